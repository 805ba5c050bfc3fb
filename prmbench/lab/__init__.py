"""The CPU lab: built-in arithmetic domains, small policies trained from scratch, and `prmbench lab`."""
