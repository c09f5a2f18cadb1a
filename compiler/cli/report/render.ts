/**
 * The inspect report as one self-contained HTML file: inline CSS and SVG, no script and no
 * external resource (a Content-Security-Policy forbids both, should anything slip through), WGSL
 * shown on demand in <details>. Every bundle string is escaped by the html`` template (html.ts).
 */
import { MEMORY_BANDS, memoryChartSvg, type MemoryPoint } from '../memory-chart.js';
import { html, trustedMarkup, type SafeHtml } from './html.js';
import type { BundleReport, KernelKind, LoadRow, PlanReport } from './summary.js';
import type { MatchedTimeline, TimelineRow } from './timeline.js';
import { REPORT_CSS } from './style.js';

/** no scripts, no fetches, no frames: only the inline styles (and inline SVG, which is markup) */
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";
/** nodes named in a shader's summary line; the rest are counted */
const NODES_SHOWN = 6;

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(2)} MiB`;
}

const ms = (value: number | null) => (value === null ? '–' : value.toFixed(3));

function fact(label: string, value: string | number | SafeHtml): SafeHtml {
  return html`<div class="fact"><dt>${label}</dt><dd>${value}</dd></div>`;
}

function header(report: BundleReport): SafeHtml {
  const limits = Object.entries(report.requiredLimits).map(([name, value]) => html`<tr><td>${name}</td><td class="num">${value}</td></tr>`);
  return html`<header>
<h1>flashmemc bundle report</h1>
<p class="bundle-path">${report.bundle}</p>
<dl class="facts">
${fact('format', `version ${report.formatVersion}`)}${fact('generator', report.generator)}${fact('on disk', `${bytes(report.bundleBytes)} in ${report.files} files`)}
${fact('shaders', report.shaders)}${fact('weight shards', report.shards)}${fact('models share memory', report.memory === 'shared' ? 'yes' : 'no')}
${fact('required features', report.requiredFeatures.length ? report.requiredFeatures.join(', ') : 'none')}
</dl>
<details><summary>required limits (${limits.length})</summary><table class="limits"><tbody>${limits}</tbody></table></details>
</header>`;
}

function nav(report: BundleReport): SafeHtml {
  const links = report.plans.map((p, i) => html`<li><a href="#plan-${i}">${p.name}</a></li>`);
  return html`<nav><ul>${links}${report.timeline ? html`<li><a href="#timeline">timeline</a></li>` : ''}</ul></nav>`;
}

function signature(plan: PlanReport): SafeHtml {
  if (!plan.signature) return html``;
  const rows = [
    ...plan.signature.inputs.map((t) => ({ ...t, direction: 'input' })),
    ...plan.signature.outputs.map((t) => ({ ...t, direction: 'output' })),
  ].map((t) => html`<tr class="${t.direction}"><td>${t.direction}</td><td class="name">${t.name}</td><td>${t.dtype}</td><td class="shape">[${t.shape.join(', ')}]</td></tr>`);
  return html`<h3>Signature</h3>
<table class="signature"><thead><tr><th>tensor</th><th>name</th><th>dtype</th><th>shape</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function shaderDetails(kind: KernelKind): SafeHtml[] {
  return kind.shaders.map((use) => {
    const more = use.nodes.length > NODES_SHOWN ? ` and ${use.nodes.length - NODES_SHOWN} more` : '';
    return html`<details class="wgsl" data-shader="${use.shader}"><summary>${use.path}: ${use.dispatches} dispatch${use.dispatches === 1 ? '' : 'es'}, node${use.nodes.length === 1 ? '' : 's'} ${use.nodes.slice(0, NODES_SHOWN).join(', ')}${more}</summary><pre><code>${use.wgsl}</code></pre></details>`;
  });
}

function kernels(plan: PlanReport): SafeHtml {
  const rows = plan.kernels.map((k) => html`<tr><td class="label">${k.label}</td><td class="num count">${k.dispatches}</td><td class="shaders">${shaderDetails(k)}</td></tr>`);
  const all = plan.dispatches.map((d) => html`<tr><td class="num">${d.kernel}</td><td>${d.label}</td><td>${d.node}</td><td class="num">${d.shader}</td><td>${d.workgroups.join(' × ')}</td></tr>`);
  return html`<h3>Kernels by kind</h3>
<table class="kernels"><thead><tr><th>kernel</th><th>dispatches</th><th>WGSL (open to read)</th></tr></thead><tbody>${rows}</tbody></table>
<details class="dispatch-list"><summary>all ${plan.dispatches.length} dispatches in run order</summary>
<table class="dispatches"><thead><tr><th>#</th><th>kernel</th><th>node</th><th>shader</th><th>workgroups</th></tr></thead><tbody>${all}</tbody></table></details>`;
}

function weights(plan: PlanReport): SafeHtml {
  const textureNote = plan.textures.length
    ? html`<p>${plan.textures.length} weight texture${plan.textures.length === 1 ? '' : 's'} (2.5D, rgba32float texture_2d_array): ${plan.textures.map((t) => `${t.width}×${t.height}×${t.layers}`).join(', ')} texels.</p>`
    : '';
  const groups = plan.weightGroups.map((g) => html`<tr><td>${g.format}</td><td>${g.layout === 'texture' ? '2.5D texture' : 'buffer'}</td><td class="${g.residency}">${g.residency}</td><td class="num">${g.tensors}</td><td class="num">${bytes(g.bytes)}</td></tr>`);
  const all = plan.weights.map((w) => html`<tr><td class="name">${w.name}</td><td>${w.format}</td><td>${w.layout}</td><td class="${w.residency}">${w.residency}</td><td class="num">${bytes(w.bytes)}</td><td class="num">${w.uploads}</td></tr>`);
  return html`<h3>Weights by format and layout</h3>
${textureNote}
<table class="weight-groups"><thead><tr><th>format</th><th>layout</th><th>residency</th><th>tensors</th><th>bytes</th></tr></thead><tbody>${groups}</tbody></table>
<details><summary>all ${plan.weights.length} weights</summary>
<table class="weights"><thead><tr><th>weight</th><th>format</th><th>layout</th><th>residency</th><th>bytes</th><th>uploads</th></tr></thead><tbody>${all}</tbody></table></details>`;
}

function memory(plan: PlanReport): SafeHtml {
  const budget = plan.loadPlan?.budgetBytes;
  const peak = (key: keyof Omit<MemoryPoint, 'step'>) => Math.max(0, ...plan.memory.map((p) => p[key]));
  const totalPeak = Math.max(0, ...plan.memory.map((p) => p.resident + p.staging + p.streamed + p.activations));
  const peaks = MEMORY_BANDS.map((band) => fact(`peak ${band.label}`, bytes(peak(band.key))));
  return html`<h3>GPU memory over the run</h3>
<figure>${trustedMarkup(memoryChartSvg(`${plan.name} (${plan.strategy})`, plan.memory, budget))}</figure>
<dl class="facts">${fact('budget', budget === undefined ? 'none (every weight preloaded)' : bytes(budget))}${fact('peak of the chart', bytes(totalPeak))}${fact('planned peak (with the readback buffer)', bytes(plan.plannedPeakBytes))}${peaks}
${fact('buffers', plan.buffers.map((b) => `${b.role} ${bytes(b.size)}`).join(', '))}</dl>`;
}

function loadPath(row: LoadRow): string {
  switch (row.path) {
    case 'carrier': return 'carried by kernel';
    case 'copy': return 'copied from the ring before kernel';
    case 'direct': return 'uploaded directly before kernel';
  }
}

function kernelCell(kernel: number | undefined, by: LoadRow['loadBy']): SafeHtml {
  return kernel === undefined || !by ? html`<td>–</td>` : html`<td><span class="num">#${kernel}</span> ${by.label} <span class="node">${by.node}</span></td>`;
}

function loadPlan(plan: PlanReport): SafeHtml {
  const lp = plan.loadPlan;
  if (!lp) return html`<h3>Load plan</h3><p class="no-plan">Strategy preload: every weight is uploaded once at load and stays resident.</p>`;
  const summary = html`<dl class="facts">${fact('solver', `${lp.solver} in ${lp.windows} window${lp.windows === 1 ? '' : 's'} (${lp.greedyWindows} greedy)`)}${fact('budget', bytes(lp.budgetBytes))}
${fact('streamed', `${lp.streamedWeights} weights, ${bytes(lp.streamedBytes)}`)}${fact('preloaded', `${lp.preloadedWeights} weights`)}
${fact('carried', `${bytes(lp.carriedBytes)} by ${lp.carrierKernels} kernels`)}${fact('copied from the ring', bytes(lp.copiedBytes))}${fact('uploaded directly', bytes(lp.directBytes))}
${fact('staging ring', bytes(lp.ringBytes))}${lp.profile ? fact('device profile', `${lp.profile.name} (${lp.profile.device})`) : ''}</dl>`;
  const rows = plan.loads.map((row) => html`<tr data-step="${row.step}" class="${row.path}"><td class="num">${row.step}</td><td class="weight">${row.weight}</td><td class="num">${bytes(row.bytes)}</td><td>${loadPath(row)}</td>${kernelCell(row.loadKernel, row.loadBy)}${kernelCell(row.firstUse, row.usedBy)}<td class="num distance">${row.distance ?? '–'}</td></tr>`);
  return html`<h3>Load plan</h3>
${summary}
<p>One row per weight upload of the run: how the bytes reach their slot, the kernel that moves them there, the kernel that first reads them, and the loading distance between the two in kernels.</p>
<table class="load-plan"><thead><tr><th>run step</th><th>weight</th><th>bytes</th><th>path</th><th>loading kernel</th><th>first use</th><th>distance</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function planSection(plan: PlanReport, index: number): SafeHtml {
  const streamed = plan.weights.filter((w) => w.residency === 'streamed').reduce((s, w) => s + w.bytes, 0);
  const resident = plan.weights.filter((w) => w.residency === 'resident').reduce((s, w) => s + w.bytes, 0);
  return html`<section class="plan" id="plan-${index}">
<h2><span class="model-name">${plan.name}</span> <span class="tag">${plan.strategy}</span></h2>
<dl class="facts">${fact('dispatches', plan.dispatches.length)}${fact('kernel kinds', plan.kernels.length)}${fact('resident weights', bytes(resident))}${fact('streamed weights', bytes(streamed))}${fact('planned peak GPU memory', bytes(plan.plannedPeakBytes))}</dl>
${signature(plan)}
${kernels(plan)}
${weights(plan)}
${memory(plan)}
${loadPlan(plan)}
</section>`;
}

const LANE_HEIGHT = 18;

/** One lane per event kind, a bar per event from its start to its end (host ms from the start of the run). */
function timelineSvg(events: readonly TimelineRow[]): SafeHtml {
  if (events.length === 0) return html`<p>No events.</p>`;
  const width = 900, left = 90, right = 20, top = 10;
  const kinds = [...new Set(events.map((e) => e.kind))];
  const start = Math.min(...events.map((e) => e.startMs));
  const end = Math.max(...events.map((e) => e.endMs ?? e.startMs), start + 1e-3);
  const x = (t: number) => left + ((width - left - right) * (t - start)) / (end - start);
  const height = top + kinds.length * LANE_HEIGHT + 30;
  const lanes = kinds.map((kind, i) => html`<text x="${left - 6}" y="${top + i * LANE_HEIGHT + 13}" text-anchor="end" font-size="11">${kind}</text>`);
  const bars = events.map((e) => {
    const lane = kinds.indexOf(e.kind);
    const x0 = x(e.startMs);
    const w = Math.max(1, x(e.endMs ?? e.startMs) - x0);
    return html`<rect class="kind-${e.kind}" x="${x0.toFixed(1)}" y="${top + lane * LANE_HEIGHT + 2}" width="${w.toFixed(1)}" height="${LANE_HEIGHT - 4}"><title>${e.kind} step ${e.step} ${e.label ?? ''} ${ms(e.startMs)}-${ms(e.endMs)} ms</title></rect>`;
  });
  return html`<svg xmlns="http://www.w3.org/2000/svg" class="timeline-chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" role="img" aria-label="timeline">
${lanes}${bars}
<text x="${left}" y="${height - 6}" font-size="11">${ms(start)} ms</text><text x="${width - right}" y="${height - 6}" font-size="11" text-anchor="end">${ms(end)} ms</text>
</svg>`;
}

function kindTotals(events: readonly TimelineRow[]): SafeHtml {
  const kinds = [...new Set(events.map((e) => e.kind))];
  const rows = kinds.map((kind) => {
    const of = events.filter((e) => e.kind === kind);
    const busy = of.reduce((s, e) => s + (e.endMs === null ? 0 : e.endMs - e.startMs), 0);
    const moved = of.reduce((s, e) => s + (e.bytes ?? 0), 0);
    return html`<tr><td>${kind}</td><td class="num">${of.length}</td><td class="num">${ms(busy)}</td><td class="num">${moved ? bytes(moved) : '–'}</td></tr>`;
  });
  return html`<table class="timeline-kinds"><thead><tr><th>kind</th><th>events</th><th>total ms</th><th>bytes</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function timelineTable(part: 'run' | 'load', events: readonly TimelineRow[]): SafeHtml {
  const rows = events.map((e, i) => html`<tr class="${e.kind}"><td class="num">${i}</td><td>${e.kind}</td><td class="num">${e.step < 0 ? '–' : e.step}</td><td>${e.label ?? ''}</td><td>${e.node ?? ''}</td><td class="num">${e.bytes === undefined ? '' : bytes(e.bytes)}</td><td class="num">${ms(e.startMs)}</td><td class="num">${e.endMs === null ? '–' : ms(e.endMs - e.startMs)}</td></tr>`);
  return html`<table class="timeline ${part}"><thead><tr><th>#</th><th>kind</th><th>step</th><th>kernel / weight</th><th>node</th><th>bytes</th><th>start ms</th><th>duration ms</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function timelineSection(timeline: MatchedTimeline & { file: string }): SafeHtml {
  return html`<section id="timeline">
<h2>Timeline</h2>
<p>From <span class="timeline-file">${timeline.file}</span>: the last run of <span class="timeline-plan">${timeline.plan}</span>, per step, in host milliseconds from the start of the run. A step's entry spans recording it; 'gpu' entries span each submission until the GPU finished it.</p>
${timelineSvg(timeline.run)}
${kindTotals(timeline.run)}
${timelineTable('run', timeline.run)}
<details><summary>the load (${timeline.load.length} events)</summary>${kindTotals(timeline.load)}${timelineTable('load', timeline.load)}</details>
</section>`;
}

export function renderReport(report: BundleReport): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flashmemc report: ${report.bundle}</title>
<style>${trustedMarkup(REPORT_CSS)}</style>
</head>
<body>
${header(report)}
${nav(report)}
<main>
${report.plans.map(planSection)}
${report.timeline ? timelineSection(report.timeline) : ''}
</main>
<footer>Written by flashmemc inspect --html. Self-contained: no scripts, no network.</footer>
</body>
</html>
`.markup;
}
