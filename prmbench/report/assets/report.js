// prmbench report: sortable tables, a paginated problem list and a lazily rendered drill-down.
// The summary (cells, problems, outcomes) is parsed at load; each cell's records and trees sit in
// JSON blocks of S.chunk problems (element ids cell-I-J), parsed only when one
// of those problems is opened.
"use strict";
(function () {
  const S = JSON.parse(document.getElementById("summary").textContent);
  const cache = {};
  const PAGE = 50;
  let page = 0, filtered = S.problems.map((_, i) => i), selected = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k.nodeType ? k : String(k));
    return e;
  }
  function colour(s) {  // red (0) to green (1)
    if (s === null || s === undefined) return "#e8e8e8";
    const x = Math.max(0, Math.min(1, Number(s)));
    return `hsl(${Math.round(120 * x)}, 65%, 82%)`;
  }
  function fmt(x, d) { return x === null || x === undefined ? "-" : (typeof x === "number" ? (Math.abs(x) >= 1e5 ? x.toExponential(2) : x.toFixed(d === undefined ? 3 : d)) : String(x)); }
  const index = {};
  S.problems.forEach((p, i) => { index[p.key] = i; });
  function detail(ci, key) {  // the record and tree of one problem in one cell
    const id = `cell-${ci}-${Math.floor(index[key] / S.chunk)}`;
    if (!(id in cache)) cache[id] = JSON.parse(document.getElementById(id).textContent);
    return cache[id][key];
  }

  // -- sortable tables -------------------------------------------------------------------------
  function makeSortable(table) {
    table.querySelectorAll("thead th").forEach((th, col) => th.addEventListener("click", () => {
      const asc = !th.classList.contains("asc");
      table.querySelectorAll("thead th").forEach(h => h.classList.remove("asc", "desc"));
      th.classList.add(asc ? "asc" : "desc");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      const val = r => { const c = r.cells[col]; const v = c.dataset.v !== undefined ? c.dataset.v : c.textContent; const n = parseFloat(v); return isNaN(n) ? v : n; };
      rows.sort((a, b) => { const x = val(a), y = val(b); const c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y)); return asc ? c : -c; });
      rows.forEach(r => body.appendChild(r));
    }));
  }
  document.querySelectorAll("table.sortable").forEach(makeSortable);

  // -- the problem list (paginated, filtered) --------------------------------------------------
  function renderProblems() {
    const tb = document.querySelector("#problems tbody");
    tb.textContent = "";
    const start = page * PAGE;
    for (const pi of filtered.slice(start, start + PAGE)) {
      const p = S.problems[pi];
      const dots = el("span", {class: "dots"});
      let ok = 0, n = 0;
      S.cells.forEach((c, ci) => {
        const o = S.outcomes[ci][p.key];
        if (o) { n++; ok += o[0] ? 1 : 0; }
        dots.append(el("span", {class: o ? (o[0] ? "dot-ok" : "dot-bad") : "dot-none", title: c.key}));
      });
      const tr = el("tr", {"data-key": p.key, onclick: () => openProblem(pi)}, el("td", {}, p.task), el("td", {}, p.id),
        el("td", {class: "num"}, `${ok}/${n}`), el("td", {}, dots));
      if (pi === selected) tr.classList.add("sel");
      tb.append(tr);
    }
    const pages = Math.max(1, Math.ceil(filtered.length / PAGE));
    const pager = document.getElementById("pager");
    pager.textContent = "";
    pager.append(el("button", {onclick: () => { if (page > 0) { page--; renderProblems(); } }}, "prev"),
      ` page ${page + 1} of ${pages} (${filtered.length} problems) `,
      el("button", {onclick: () => { if (page < pages - 1) { page++; renderProblems(); } }}, "next"));
  }
  document.getElementById("filter").addEventListener("input", e => {
    const q = e.target.value.toLowerCase();
    filtered = S.problems.map((_, i) => i).filter(i => (S.problems[i].task + "/" + S.problems[i].id).toLowerCase().includes(q));
    page = 0; renderProblems();
  });

  // -- the drill-down --------------------------------------------------------------------------
  function steps(rec) {
    const info = rec.info || {}, text = rec.chosen_text;
    if (text === null || text === undefined) return el("div", {}, "(no candidate)");
    const scores = info.chosen_step_scores || [];
    let parts = text.split("\n\n");
    if (parts.length !== scores.length) parts = [text];  // the task split steps differently: one block
    const box = el("div", {});
    parts.forEach((s, i) => {
      const sc = parts.length === scores.length ? scores[i] : info.chosen_score;
      box.append(el("div", {class: "step", style: `background:${colour(sc)}`}, s, el("span", {class: "score"}, `[${fmt(sc)}]`)));
    });
    return box;
  }
  function candidates(rec) {
    const info = rec.info || {}, sc = info.candidate_scores || [], an = info.candidate_answers || [];
    const t = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "answer"), el("th", {}, "score"))));
    const tb = el("tbody", {});
    sc.forEach((s, i) => tb.append(el("tr", {style: i === info.chosen_index ? "font-weight:600;background:#eef4ff" : ""},
      el("td", {}, i === info.chosen_index ? `${i} (chosen)` : i), el("td", {}, an[i] === null ? "-" : an[i]),
      el("td", {class: "num", style: `background:${colour(s)}`}, fmt(s)))));
    t.append(tb);
    return t;
  }
  function tree(t) {
    const nodes = t.nodes, kids = {};
    nodes.forEach(n => { if (n.parent !== null) (kids[n.parent] = kids[n.parent] || []).push(n); });
    const onPath = new Set();
    const chosen = nodes.find(n => n.chosen);
    for (let n = chosen; n; n = n.parent === null ? null : nodes[n.parent]) onPath.add(n.id);
    function li(n) {
      const ch = kids[n.id] || [];
      const tags = [];
      if (n.chosen) tags.push("chosen"); if (n.pruned) tags.push("pruned"); if (n.finished) tags.push("finished");
      if (n.truncated) tags.push("truncated"); if (n.kind === "rollout") tags.push("rollout");
      if (n.candidate !== null && n.candidate !== undefined) tags.push("candidate " + n.candidate);
      if (n.visits !== null && n.visits !== undefined) tags.push(`N=${n.visits} Q=${fmt(n.value)}`);
      const item = el("li", {class: (n.chosen ? "chosen " : "") + (n.pruned ? "pruned" : ""), "data-node": n.id});
      const text = n.id === 0 ? "(root: empty solution)" : (n.text.length > 400 ? n.text.slice(0, 400) + "..." : n.text);
      const tog = el("button", {class: "tog"}, ch.length ? "\u25B8" : "\u00B7");
      item.append(tog, el("span", {class: "lbl", style: `background:${colour(n.score)}`, title: n.text}, text),
        el("span", {class: "score"}, n.id === 0 ? `${ch.length} children` : `score ${fmt(n.score)}` + (ch.length ? `, ${ch.length} children` : "")),
        ...tags.map(x => el("span", {class: "tag"}, x)));
      let open = false, sub = null;
      function toggle() {
        if (!ch.length) return;
        open = !open; tog.textContent = open ? "\u25BE" : "\u25B8";
        if (open && !sub) { sub = el("ul", {}); ch.forEach(c => sub.append(li(c))); item.append(sub); }  // lazy
        if (sub) sub.style.display = open ? "" : "none";
      }
      tog.addEventListener("click", toggle);
      item.toggle = toggle;
      if (onPath.has(n.id) && n.id === 0) toggle();
      return item;
    }
    return el("div", {class: "tree"}, el("div", {class: "meta"}, `${nodes.length} nodes; click \u25B8 to expand; outlined: the chosen path's end`), el("ul", {}, li(nodes[0])));
  }
  function cellPanel(ci, p) {
    const c = S.cells[ci], o = S.outcomes[ci][p.key];
    const head = o ? [el("span", {class: o[0] ? "ok" : "bad"}, o[0] ? "correct" : "wrong"), ` score ${fmt(o[1])}, FLOPs ${fmt(o[2])}, ${fmt(o[3], 2)} s`] : ["(no record)"];
    const d = el("details", {"data-cell": ci}, el("summary", {}, el("b", {}, c.key), "  ", ...head, c.n_trees ? el("span", {class: "tag"}, "tree") : null));
    d.addEventListener("toggle", () => {
      if (!d.open || d.dataset.done || !o) return;
      d.dataset.done = "1";
      const det = detail(ci, p.key);
      const rec = det.record;
      d.append(el("h4", {}, "chosen solution (steps coloured by score)"), steps(rec),
        el("div", {}, `answer: ${rec.answer === null ? "-" : rec.answer}; grade: `, el("span", {class: rec.correct ? "ok" : "bad"}, rec.correct ? "correct" : "wrong")),
        el("h4", {}, `candidates (${rec.n_candidates})`), candidates(rec),
        el("h4", {}, "grade details"), el("pre", {class: "json"}, JSON.stringify(rec.grade_details, null, 1)),
        el("h4", {}, "spend"), el("pre", {class: "json"}, JSON.stringify({...rec.spend, allowance_flops: rec.allowance_flops, budget_unit: rec.budget_unit}, null, 1)));
      if (det.tree) d.append(el("h4", {}, "search tree"), tree(det.tree));
    });
    return d;
  }
  function openProblem(pi) {
    selected = pi;
    const p = S.problems[pi], box = document.getElementById("drill");
    box.textContent = "";
    box.append(el("h3", {}, `${p.task} / ${p.id}`));
    S.cells.forEach((c, ci) => { if (S.outcomes[ci][p.key]) box.append(cellPanel(ci, p)); });
    renderProblems();
    box.scrollIntoView();
  }
  window.prmbenchReport = {openProblem: openProblem, problems: S.problems.length, cells: S.cells.length};
  renderProblems();
})();
