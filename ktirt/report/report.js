(() => {
"use strict";
// The report's behaviour: tables (search, sort, filter) in plain DOM, charts with Vega-Lite through vegaEmbed.
// window.reportViews holds each chart's Vega view by name (handy in the console, and for the browser test).
// One function scope: the inlined Vega bundle declares short global names (D, $...) of its own.
const D = JSON.parse(document.getElementById("report-data").textContent);
window.reportViews = {};
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
// a number with d decimals, or d = 0 for a count (thousands separated); empty for missing
const fmt = (v, d = 3) => (v === null || v === undefined) ? "" : typeof v !== "number" ? v : d === 0 ? v.toLocaleString("en") : v.toFixed(d);
const rowsOf = (cols) => { const keys = Object.keys(cols), n = keys.length ? cols[keys[0]].length : 0;
  return Array.from({length: n}, (_, i) => Object.fromEntries(keys.map((k) => [k, cols[k][i]]))); };
const MAX_ROWS = 300;
const MAX_DRIFT_CHART = 40;
const MAX_SKILL_CHART = 60;

async function chart(name, id, spec, renderer = "svg") {
  const full = Object.assign({$schema: "https://vega.github.io/schema/vega-lite/v5.json",
    config: {view: {stroke: null}, axis: {labelFontSize: 11, titleFontSize: 12}}}, spec);
  if (window.reportViews[name]) window.reportViews[name].finalize();
  const result = await vegaEmbed($(id), full, {actions: false, renderer: renderer, tooltip: true});
  window.reportViews[name] = result.view;
  return result.view;
}

// ---------- Run ----------
function drawRun() {
  const r = D.run;
  $("run-counts").innerHTML = `<div>source<b>${esc(r.source)}</b></div>` +
    Object.entries(r.counts).filter(([, v]) => v !== null).map(([k, v]) => `<div>${esc(k)}<b>${fmt(v, 0)}</b></div>`).join("");
  $("run-figures").tBodies[0].innerHTML = r.figures.map((f) => {
    const span = (f.floor !== null && f.ceiling !== null && f.ceiling > f.floor) ? (f.value - f.floor) / (f.ceiling - f.floor) : null;
    const bar = span === null ? "" : `<span class="bar-track"><span class="bar" style="width:${Math.max(0, Math.min(1, span)) * 120}px"></span></span> ${(100 * span).toFixed(0)} %`;
    return `<tr><td>${f.engine}</td><td>${esc(f.figure)}</td><td><b>${fmt(f.value, 4)}</b></td>` +
      `<td>${f.floor === null ? "" : fmt(f.floor, 4) + " (" + esc(f.floor_name) + ")"}</td>` +
      `<td>${f.ceiling === null ? "" : fmt(f.ceiling, 4) + " (" + esc(f.ceiling_name) + ")"}</td><td>${bar}</td></tr>`;
  }).join("");
  const j = r.join;
  $("run-join").textContent = `Join: ${fmt(100 * j.coverage, 1)} % of SAKT predictions are on items with WD-IRT parameters, ` +
    `${fmt(100 * j.drift_coverage, 1)} % on items with drift windows; ${fmt(100 * j.user_coverage, 1)} % of students with a ` +
    `mastery state have predictions; ${j.schema_mismatches} key-type mismatches.`;
}

// ---------- Item health ----------
const ITEMS = rowsOf(D.items);
const DRIFTING = rowsOf(D.drifting);
const itemState = {query: "", driftingOnly: false, key: "n_responses", dir: -1};

function compare(key, dir) {
  return (a, b) => { const x = a[key], y = b[key];
    if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * dir || (a.item_id < b.item_id ? -1 : 1); };
}

function filteredItems() {
  const q = itemState.query.trim().toLowerCase();
  return ITEMS.filter((it) => (!itemState.driftingOnly || it.drifting) &&
    (!q || it.item_id.toLowerCase().includes(q) || it.skills.toLowerCase().includes(q)));
}

function drawItemTable() {
  const rows = filteredItems().sort(compare(itemState.key, itemState.dir));
  $("item-table").tBodies[0].innerHTML = rows.slice(0, MAX_ROWS).map((it) =>
    `<tr class="${it.drifting ? "drifting" : ""}"><td>${esc(it.item_id)}</td><td>${esc(it.skills)}</td><td>${esc(it.problem_type)}</td>` +
    `<td>${fmt(it.difficulty, 2)}</td><td>${fmt(it.difficulty_se, 2)}</td><td>${fmt(it.discrimination, 2)}</td>` +
    `<td>${fmt(it.guessing, 2)}</td><td>${fmt(it.n_responses, 0)}</td><td>${it.drifting ? "yes" : ""}</td></tr>`).join("");
  $("item-count").textContent = `${rows.length.toLocaleString("en")} of ${ITEMS.length.toLocaleString("en")} items match` +
    (rows.length > MAX_ROWS ? ` (first ${MAX_ROWS} shown; sort or search to see others)` : "");
  for (const th of $("item-table").tHead.rows[0].cells) {
    th.classList.toggle("asc", th.dataset.key === itemState.key && itemState.dir === 1);
    th.classList.toggle("desc", th.dataset.key === itemState.key && itemState.dir === -1);
  }
}

function wireItemTable() {
  $("item-search").addEventListener("input", (e) => { itemState.query = e.target.value; drawItemTable(); });
  $("drifting-only").addEventListener("change", (e) => { itemState.driftingOnly = e.target.checked; drawItemTable(); });
  for (const th of $("item-table").tHead.rows[0].cells) {
    th.addEventListener("click", () => {
      itemState.dir = itemState.key === th.dataset.key ? -itemState.dir : (th.dataset.key === "item_id" || th.dataset.key === "skills" ? 1 : -1);
      itemState.key = th.dataset.key; drawItemTable();
    });
  }
  drawItemTable();
}

function drawDriftTable() {
  const rows = DRIFTING;
  $("drift-table").tBodies[0].innerHTML = rows.length ? rows.map((d) => `<tr><td>${esc(d.item_id)}</td><td>${esc(d.skills)}</td>` +
    `<td>${esc(d.since)}</td><td>${fmt(d.before, 2)}</td><td>${fmt(d.after, 2)}</td><td>${d.shift > 0 ? "+" : ""}${fmt(d.shift, 2)}</td>` +
    `<td>${fmt(d.n_responses, 0)}</td></tr>`).join("") : `<tr><td colspan="7">no item flagged as drifting</td></tr>`;
}

// a difficulty axis clipped to D.item_axis / D.drift_axis (ktirt/report/data.py): values beyond sit at its edge
const clipped = (axis) => ({domain: axis.domain, clamp: true, nice: false, zero: false});
const beyond = (axis, what) => axis.outside ? `${axis.outside.toLocaleString("en")} ${what}${axis.outside === 1 ? "" : "s"} ` +
  `beyond ±${axis.bound} logits, drawn at the axis's edge (the table gives ${axis.outside === 1 ? "its" : "their"} difficulty)` : "";

function itemCharts() {
  const items = ITEMS.filter((it) => it.difficulty !== null && it.discrimination !== null)
    .map((it) => ({...it, status: it.drifting ? "drifting" : "stable"}));
  $("items-outside").textContent = beyond(D.item_axis, "item");
  const scatter = chart("items", "chart-items", {
    width: 420, height: 300, data: {values: items}, mark: {type: "point", filled: true, size: 18},
    encoding: {x: {field: "difficulty", type: "quantitative", title: "difficulty (logits)", scale: clipped(D.item_axis)},
      y: {field: "discrimination", type: "quantitative"},
      color: {field: "status", type: "nominal", scale: {domain: ["stable", "drifting"], range: ["#457b9d", "#e76f51"]}, title: null},
      opacity: {condition: {test: "datum.status === 'drifting'", value: 0.95}, value: 0.35},
      tooltip: [{field: "item_id"}, {field: "skills"}, {field: "difficulty", format: ".2f"},
        {field: "discrimination", format: ".2f"}, {field: "guessing", format: ".2f"}, {field: "n_responses"}]}}, "canvas");
  const all = DRIFTING;  // the chart: the largest shifts (the table below lists every drifting item)
  const drift = [...all].sort((a, b) => Math.abs(b.shift) - Math.abs(a.shift) || (a.item_id < b.item_id ? -1 : 1)).slice(0, MAX_DRIFT_CHART);
  $("drift-shown").textContent = all.length > drift.length ? ` — the ${drift.length} largest shifts of ${all.length}` : "";
  $("drift-outside").textContent = beyond(D.drift_axis, "drifting item");
  const dx = clipped(D.drift_axis);
  const dumbbell = chart("drift", "chart-drift", drift.length ? {
    width: 380, height: {step: 12}, data: {values: drift},
    encoding: {y: {field: "item_id", type: "nominal", sort: {field: "since"}, title: null, axis: {labelFontSize: 9}}},
    layer: [{mark: {type: "rule", color: "#999"}, encoding: {x: {field: "before", type: "quantitative", title: "difficulty (logits)", scale: dx}, x2: {field: "after"}}},
      {mark: {type: "point", filled: false, color: "#457b9d"}, encoding: {x: {field: "before", type: "quantitative", scale: dx}}},
      {mark: {type: "point", filled: true, color: "#e76f51"}, encoding: {x: {field: "after", type: "quantitative", scale: dx},
        tooltip: [{field: "item_id"}, {field: "since"}, {field: "before", format: ".2f"}, {field: "after", format: ".2f"}]}}]
  } : {width: 380, height: 40, data: {values: [{t: "no item flagged as drifting"}]}, mark: "text", encoding: {text: {field: "t"}}});
  return Promise.all([scatter, dumbbell]);
}

// ---------- Skills ----------
function skillCharts() {
  // the chart: the skills most students met (the select lists every skill)
  const met = D.skills.filter((s) => s.students > 0);
  const shown = [...met].sort((a, b) => b.students - a.students || (a.skill_id < b.skill_id ? -1 : 1)).slice(0, MAX_SKILL_CHART);
  $("spread-shown").textContent = met.length > shown.length ? ` — the ${shown.length} skills with most students, of ${met.length}` : "";
  const spread = shown.map((s) => ({skill: s.skill_id, description: s.description,
    q10: s.quantiles[0], q25: s.quantiles[1], median: s.quantiles[2], q75: s.quantiles[3], q90: s.quantiles[4], students: s.students}));
  const x = {type: "quantitative", scale: {domain: [0, 1]}, title: "mastery"};
  const y = {field: "skill", type: "nominal", sort: {field: "median", order: "descending"}, title: null};
  return chart("skill_spread", "chart-skill-spread", {width: 360, height: {step: 14}, data: {values: spread}, encoding: {y: y},
    layer: [{mark: {type: "rule", color: "#888"}, encoding: {x: {field: "q10", ...x}, x2: {field: "q90"}}},
      {mark: {type: "bar", size: 9, color: "#a8dadc"}, encoding: {x: {field: "q25", ...x}, x2: {field: "q75"},
        tooltip: [{field: "skill"}, {field: "description"}, {field: "students"}, {field: "median", format: ".2f"}]}},
      {mark: {type: "tick", color: "#1d3557", thickness: 2, size: 12}, encoding: {x: {field: "median", ...x}}}]});
}

function drawSkill() {
  const s = D.skills.find((k) => k.skill_id === $("skill-select").value);
  if (!s) return Promise.resolve();
  $("skill-info").textContent = `${s.description ? s.description + "; " : ""}${s.n_items} items, ${s.students} students` +
    (s.mean_final === null ? "" : `, mean end-of-data mastery ${fmt(s.mean_final, 2)}`) + `, ${s.drifting_items} drifting items`;
  const hist = s.histogram.map((n, i) => ({from: i / s.histogram.length, to: (i + 1) / s.histogram.length, students: n}));
  const curve = rowsOf(s.curve).flatMap((c) => [{attempt: c.attempt, series: "SAKT mastery (mean)", value: c.mastery, students: c.students},
    {attempt: c.attempt, series: "observed correct rate", value: c.accuracy, students: c.students}]);
  return Promise.all([
    chart("skill_hist", "chart-skill-hist", {width: 360, height: 150, data: {values: hist}, mark: {type: "bar", color: "#457b9d"},
      encoding: {x: {field: "from", type: "quantitative", bin: {binned: true, step: 1 / s.histogram.length}, title: "mastery at the last attempt"},
        x2: {field: "to"}, y: {field: "students", type: "quantitative"}, tooltip: [{field: "from"}, {field: "to"}, {field: "students"}]}}),
    chart("skill_curve", "chart-skill-curve", {width: 360, height: 170, data: {values: curve},
      mark: {type: "line", point: {size: 14}},
      encoding: {x: {field: "attempt", type: "quantitative", title: "attempt on the skill"},
        y: {field: "value", type: "quantitative", scale: {domain: [0, 1]}, title: null},
        color: {field: "series", type: "nominal", title: null, legend: {orient: "bottom"}},
        tooltip: [{field: "attempt"}, {field: "series"}, {field: "value", format: ".3f"}, {field: "students"}]}})]);
}

function wireSkills() {
  $("skill-select").innerHTML = D.skills.map((s) => `<option value="${esc(s.skill_id)}">${esc(s.skill_id)}` +
    `${s.description ? " — " + esc(s.description) : ""}</option>`).join("");
  const first = [...D.skills].sort((a, b) => b.students - a.students)[0];
  if (first) $("skill-select").value = first.skill_id;
  $("skill-select").addEventListener("change", drawSkill);
  return drawSkill();
}

// ---------- Students ----------
const S = D.students;
const sampled = new Set(S.samples);

function studentLabel(u) {
  const i = S.info[u];
  return `${u} (${i.split}, ${i.responses} responses${sampled.has(u) ? ", join sample" : ""})`;
}

function fillStudents() {
  const q = $("student-search").value.trim().toLowerCase();
  const current = $("student-select").value;
  const shown = S.order.filter((u) => !q || u.toLowerCase().includes(q));
  $("student-select").innerHTML = shown.length ? shown.map((u) => `<option value="${esc(u)}">${esc(studentLabel(u))}</option>`).join("")
    : `<option value="">no student matches</option>`;
  if (shown.includes(current)) $("student-select").value = current;
  return $("student-select").value !== current;
}

function fillStudentSkills() {
  const t = S.timelines[$("student-select").value];
  const skills = t ? [...new Set(t.skill_id)] : [];
  $("student-skill").innerHTML = `<option value="">all skills</option>` +
    skills.map((k) => `<option value="${esc(k)}">${esc(k)}</option>`).join("");
}

function drawStudent() {
  const user = $("student-select").value, skill = $("student-skill").value, t = S.timelines[user];
  // one x per response: a multi-skill response has one mastery row per skill, one prediction and one outcome
  const numbers = new Map();
  const rows = t ? rowsOf(t).filter((r) => !skill || r.skill_id === skill).map((r) => {
    const first = !numbers.has(r.response);
    if (first) numbers.set(r.response, numbers.size + 1);
    return {...r, attempt: numbers.get(r.response), first: first,
      outcome: r.correct === 1 ? "correct" : r.correct === 0 ? "wrong" : "not scored",
      phase: r.drift ? (r.drift.startsWith("after") ? "drifted item, after its change" : "drifted item, before its change") : ""};
  }) : [];
  $("student-info").textContent = user ? `${numbers.size} responses shown` + (rows.length > numbers.size ? ` (${rows.length} response × skill rows)` : "") +
    (D.run.has_timestamps ? "" : "; the source has no clock time: responses in the file's order") : "";
  $("trajectory-table").tBodies[0].innerHTML = rows.map((r) => `<tr><td>${r.attempt}</td><td>${esc(r.time)}</td><td>${esc(r.item_id)}</td>` +
    `<td>${esc(r.skill_id)}</td><td>${r.correct ?? ""}</td><td>${fmt(r.predicted, 2)}</td><td>${fmt(r.mastery, 2)}</td>` +
    `<td>${fmt(r.difficulty, 2)}</td><td>${esc(r.drift)}</td></tr>`).join("");
  const x = {field: "attempt", type: "quantitative", axis: {tickMinStep: 1, format: "d"},
    title: D.run.has_timestamps ? "response (time order)" : "response (file order)"};
  const tip = [{field: "attempt", title: "response"}, ...(D.run.has_timestamps ? [{field: "time"}] : []), {field: "item_id"}, {field: "skill_id"}, {field: "outcome"},
    {field: "predicted", format: ".2f"}, {field: "mastery", format: ".2f"}, {field: "difficulty", format: ".2f"}, {field: "drift"}];
  return chart("trajectory", "chart-trajectory", {width: 900, height: 300, data: {values: rows},
    layer: [
      {layer: [
        {mark: {type: "line", point: {size: 16}}, encoding: {x: x, y: {field: "mastery", type: "quantitative", scale: {domain: [0, 1]},
          title: "SAKT mastery / predicted P(correct)"}, color: {field: "skill_id", type: "nominal", title: "mastery of skill"}, tooltip: tip}},
        {transform: [{filter: "datum.first"}], mark: {type: "point", size: 40, filled: true, opacity: 0.75},
          encoding: {x: x, y: {field: "predicted", type: "quantitative"},
          shape: {field: "outcome", type: "nominal", scale: {domain: ["correct", "wrong", "not scored"], range: ["circle", "cross", "square"]},
            title: "predicted P(correct), outcome"}, fill: {value: "#333"}, tooltip: tip}}]},
      {layer: [
        {transform: [{filter: "datum.first"}], mark: {type: "tick", thickness: 2, size: 10, color: "#f4a261"},
          encoding: {x: x, y: {field: "difficulty", type: "quantitative",
          title: "WD-IRT difficulty in effect (logits, orange)"}, tooltip: tip}},
        {transform: [{filter: "datum.first && datum.phase !== ''"}], mark: {type: "point", size: 140, strokeWidth: 2},
          encoding: {x: x, y: {field: "difficulty", type: "quantitative"}, shape: {field: "phase", type: "nominal",
            scale: {domain: ["drifted item, before its change", "drifted item, after its change"], range: ["diamond", "triangle-up"]}, title: "drift"},
            color: {value: "#e63946"}, tooltip: tip}}]}],
    resolve: {scale: {y: "independent", shape: "independent", color: "independent"}}});
}

function wireStudents() {
  if (!D.run.has_timestamps) $("trajectory-table").tHead.rows[0].cells[1].textContent = "time (none in the source)";
  fillStudents(); fillStudentSkills();
  $("student-search").addEventListener("input", () => { if (fillStudents()) { fillStudentSkills(); drawStudent(); } });
  $("student-select").addEventListener("change", () => { fillStudentSkills(); drawStudent(); });
  $("student-skill").addEventListener("change", drawStudent);
  return drawStudent();
}

// ---------- Model quality ----------
function qualityCharts() {
  const diag = {data: {values: [{a: 0, b: 0}, {a: 1, b: 1}]}, mark: {type: "line", strokeDash: [4, 4], color: "#aaa"},
    encoding: {x: {field: "a", type: "quantitative"}, y: {field: "b", type: "quantitative"}}};
  const roc = chart("roc", "chart-roc", {width: 300, height: 300, layer: [diag, {data: {values: rowsOf(D.quality.roc)},
    mark: {type: "line", color: "#1d3557"}, encoding: {x: {field: "fpr", type: "quantitative", title: "false positive rate"},
      y: {field: "tpr", type: "quantitative", title: "true positive rate"}}}]});
  const cal = chart("calibration", "chart-calibration", {width: 300, height: 300, layer: [diag, {data: {values: rowsOf(D.quality.calibration)},
    mark: {type: "line", point: true, color: "#1d3557"}, encoding: {x: {field: "predicted", type: "quantitative", title: "mean predicted P(correct)"},
      y: {field: "observed", type: "quantitative", title: "observed correct rate"}, tooltip: [{field: "predicted"}, {field: "observed"}]}}]});
  const slices = rowsOf(D.quality.slices), groups = [...new Set(slices.map((s) => s.slice))];
  $("slices").innerHTML = groups.map((g) => `<h3>By ${esc(g)}</h3><table class="grid"><thead><tr><th>${esc(g)}</th><th>responses</th>` +
    `<th>accuracy</th><th>SAKT predicted</th><th>SAKT gap</th><th>WD-IRT residual</th></tr></thead><tbody>` +
    slices.filter((s) => s.slice === g).map((s) => `<tr><td>${esc(s.value)}</td><td>${fmt(s.responses, 0)}</td><td>${fmt(s.accuracy)}</td>` +
      `<td>${fmt(s.sakt_predicted)}</td><td>${fmt(s.sakt_gap)}</td><td>${fmt(s.wdirt_residual)}</td></tr>`).join("") + `</tbody></table>`).join("");
  return Promise.all([roc, cal]);
}

drawRun();
wireItemTable();
drawDriftTable();
Promise.all([itemCharts(), skillCharts(), wireSkills(), wireStudents(), qualityCharts()])
  .then(() => { document.body.dataset.ready = "true"; })
  .catch((err) => { document.body.dataset.ready = "failed"; console.error(err); });
})();
