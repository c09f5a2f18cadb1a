/**
 * `npm run bench:report -- [machine ...]`: renders bench/results/<machine>/side-by-side.json (written
 * by `npm run bench`) as side-by-side.md with SVG charts next to it: warm latency, cold start and
 * peak GPU memory bars per model, and GPU-memory-over-time lines for one model and for the
 * multi-model sequence. Arguments: machine names or folders; without any, every machine folder
 * that has results.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../compiler/bundle/runtime-gen.js';

interface System {
  system: string;
  error?: string;
  settings?: Record<string, unknown>;
  compileMs?: number;
  budgetBytes?: number;
  coldStart?: { processStartToFirstOutputMs: number; deviceMs: number; importMs: number; loadMs: number; firstRunMs: number };
  coldStartWarmShaderCache?: { processStartToFirstOutputMs: number };
  warm?: { runs: number; warmup: number; medianMs: number; p90Ms: number };
  tokensPerSecond?: { prefill: number; fixedShapeSteps: number };
  peakGpuBytes?: number;
  peakHostRssBytes?: number;
  agreement?: { maxAbsError: number; maxRelError: number };
  memoryTimeline?: { points: [number, number][]; marks: [number, string, number][] };
}
interface Row { model: string; kind: string; pending?: string; parts?: string[]; weightBytes?: number; systems?: System[]; ratios?: Record<string, Record<string, number>>; flashmemcSequenceMode?: string }
interface Doc { machine: string; command: string; commit: string; date: string; durationS: number; versions: Record<string, string | null>; device?: Record<string, unknown>; host?: Record<string, unknown>; method: Record<string, string>; rows: Row[]; notes?: string[] }

const SYSTEMS = ['flashmemc-stream', 'flashmemc-preload', 'ort-web'];
const COLORS: Record<string, string> = { 'flashmemc-stream': '#1f77b4', 'flashmemc-preload': '#7fb3de', 'ort-web': '#d62728' };
const MIB = 1048576;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (v: number | undefined, digits = 1) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1));

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** one panel per model with a bar per system (each panel on its own scale, value printed) */
function barsSvg(title: string, unit: string, rows: Row[], value: (s: System) => number | undefined, whisker?: (s: System) => number | undefined): string {
  const runnable = rows.filter((r) => r.systems);
  const cols = Math.min(4, runnable.length), panelW = 190, panelH = 170, top = 44, legendH = 24;
  const rowsN = Math.ceil(runnable.length / cols);
  const width = cols * panelW + 20, height = top + rowsN * panelH + legendH;
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`, `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="36" fill="#555">${esc(unit)}; each panel has its own scale</text>`];
  runnable.forEach((row, i) => {
    const x0 = 10 + (i % cols) * panelW, y0 = top + Math.floor(i / cols) * panelH;
    const plotH = panelH - 56, baseY = y0 + 18 + plotH;
    const vals = SYSTEMS.map((name) => row.systems!.find((s) => s.system === name)).map((s) => ({ s, v: s && !s.error ? value(s) : undefined, w: s && !s.error && whisker ? whisker(s) : undefined }));
    const max = niceMax(Math.max(...vals.map((x) => Math.max(x.v ?? 0, x.w ?? 0))));
    out.push(`<text x="${x0 + 6}" y="${y0 + 12}" font-weight="bold">${esc(row.model)}</text>`);
    out.push(`<line x1="${x0 + 6}" y1="${baseY}" x2="${x0 + panelW - 14}" y2="${baseY}" stroke="#888"/>`);
    const bw = (panelW - 40) / 3;
    vals.forEach(({ s, v, w }, k) => {
      const bx = x0 + 12 + k * bw;
      if (v === undefined) {
        out.push(`<text x="${bx + bw / 2 - 4}" y="${baseY - 4}" text-anchor="middle" fill="#999">${s?.error ? 'failed' : 'n/a'}</text>`);
        return;
      }
      const h = (v / max) * plotH;
      out.push(`<rect x="${bx}" y="${baseY - h}" width="${bw - 8}" height="${h}" fill="${COLORS[SYSTEMS[k]!]}"><title>${esc(`${SYSTEMS[k]}: ${v}`)}</title></rect>`);
      if (w !== undefined) {
        const wy = baseY - (w / max) * plotH;
        out.push(`<line x1="${bx + (bw - 8) / 2}" y1="${baseY - h}" x2="${bx + (bw - 8) / 2}" y2="${wy}" stroke="#333"/><line x1="${bx + 4}" y1="${wy}" x2="${bx + bw - 12}" y2="${wy}" stroke="#333"/>`);
      }
      out.push(`<text x="${bx + (bw - 8) / 2}" y="${baseY - h - 3 - (w !== undefined ? (((w - v) / max) * plotH) : 0)}" text-anchor="middle" font-size="10">${v >= 100 ? v.toFixed(0) : v.toPrecision(3)}</text>`);
    });
    out.push(`<text x="${x0 + 6}" y="${baseY + 14}" fill="#555" font-size="10">scale 0-${max}</text>`);
  });
  const ly = height - 10;
  SYSTEMS.forEach((name, k) => out.push(`<rect x="${10 + k * 170}" y="${ly - 9}" width="10" height="10" fill="${COLORS[name]}"/><text x="${24 + k * 170}" y="${ly}">${name}</text>`));
  if (whisker) out.push(`<text x="${10 + 3 * 170}" y="${ly}" fill="#555">whisker: p90</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** live GPU bytes over time since device creation, one line per system (step function) */
function timelineSvg(row: Row): string {
  const width = 860, height = 330, left = 60, right = 20, top = 40, bottom = 60;
  const systems = row.systems!.filter((s) => s.memoryTimeline);
  const maxT = Math.max(...systems.map((s) => s.memoryTimeline!.points.at(-1)?.[0] ?? 0), ...systems.map((s) => s.memoryTimeline!.marks.at(-1)?.[0] ?? 0));
  const maxB = niceMax(Math.max(...systems.map((s) => s.peakGpuBytes ?? 0)) / MIB);
  const X = (t: number) => left + (t / (maxT || 1)) * (width - left - right);
  const Y = (b: number) => top + (1 - b / MIB / maxB) * (height - top - bottom);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(`Live GPU memory over time: ${row.model}${row.parts ? ` (${row.parts.join(' -> ')})` : ''}`)}</text>`];
  for (let k = 0; k <= 4; k++) {
    const b = (maxB * k) / 4;
    out.push(`<line x1="${left}" y1="${Y(b * MIB)}" x2="${width - right}" y2="${Y(b * MIB)}" stroke="#eee"/><text x="${left - 4}" y="${Y(b * MIB) + 4}" text-anchor="end">${b.toFixed(b < 10 ? 1 : 0)}</text>`);
  }
  out.push(`<text x="12" y="${top + (height - top - bottom) / 2}" transform="rotate(-90 12 ${top + (height - top - bottom) / 2})" text-anchor="middle">MiB live</text>`);
  out.push(`<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#888"/>`);
  for (let k = 0; k <= 5; k++) {
    const t = (maxT * k) / 5;
    out.push(`<text x="${X(t)}" y="${height - bottom + 14}" text-anchor="middle">${t >= 1000 ? `${(t / 1000).toFixed(1)} s` : `${t.toFixed(0)} ms`}</text>`);
  }
  out.push(`<text x="${(left + width - right) / 2}" y="${height - bottom + 28}" text-anchor="middle" fill="#555">time since the device was created (each system in its own process)</text>`);
  for (const s of systems) {
    const pts = [...s.memoryTimeline!.points];
    const endT = s.memoryTimeline!.marks.at(-1)?.[0];
    if (endT !== undefined && pts.length) pts.push([endT, pts.at(-1)![1]]);
    let d = '';
    pts.forEach(([t, b], i) => {
      d += i === 0 ? `M${X(t).toFixed(1)},${Y(b).toFixed(1)}` : `H${X(t).toFixed(1)}V${Y(b).toFixed(1)}`;
    });
    out.push(`<path d="${d}" fill="none" stroke="${COLORS[s.system]}" stroke-width="1.6"/>`);
    for (const [t, label] of s.memoryTimeline!.marks) {
      if (label !== 'timed runs' && label !== 'first run') continue;
      out.push(`<line x1="${X(t)}" y1="${top}" x2="${X(t)}" y2="${height - bottom}" stroke="${COLORS[s.system]}" stroke-dasharray="2,3" opacity="0.6"><title>${esc(`${s.system}: ${label}`)}</title></line>`);
    }
  }
  const ly = height - 12;
  systems.forEach((s, k) => out.push(`<rect x="${10 + k * 215}" y="${ly - 9}" width="10" height="10" fill="${COLORS[s.system]}"/><text x="${24 + k * 215}" y="${ly}">${esc(`${s.system} (peak ${num((s.peakGpuBytes ?? 0) / MIB)} MiB)`)}</text>`));
  out.push(`<text x="${width - right}" y="${ly}" text-anchor="end" fill="#555">dotted: first run, timed runs</text>`);
  out.push('</svg>');
  return out.join('\n');
}

function markdown(doc: Doc, charts: string[]): string {
  const rows = doc.rows.filter((r) => r.systems);
  const lines: string[] = [];
  lines.push(`# flashmemc vs ONNX Runtime Web (WebGPU) on ${doc.machine}`, '');
  lines.push(`Command: \`${doc.command}\` at commit ${doc.commit}, ${doc.date.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(doc.durationS / 60)} min.`);
  lines.push(`Versions: ${Object.entries(doc.versions).map(([k, v]) => `${k} ${v ?? '-'}`).join(', ')}.`);
  if (doc.device) lines.push(`Device: Dawn ${doc.device.backend} backend, ${doc.device.featureLevel} adapter, ${[doc.device.vendor, doc.device.architecture, doc.device.device, doc.device.description].filter(Boolean).join(' / ')}; host ${doc.host?.cpus} CPUs (${doc.host?.cpuModel}).`);
  const ort = rows.flatMap((r) => r.systems!).find((s) => s.system === 'ort-web' && s.settings)?.settings;
  if (ort) lines.push(`ONNX Runtime Web settings: ${Object.entries(ort).filter(([k]) => !['graphCaptureRefused', 'firstRunError', 'enableGraphCapture'].includes(k)).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('; ')}; enableGraphCapture = true where ORT accepts it (per model below).`);
  const ortRows = rows.map((r) => ({ r, s: r.systems!.find((s) => s.system === 'ort-web' && s.settings) })).filter((x) => x.s);
  lines.push(`Graph capture used: ${ortRows.map(({ r, s }) => `${r.model} ${JSON.stringify(s!.settings!.enableGraphCapture)}`).join(', ')}.`);
  const refused = [...new Set(ortRows.flatMap(({ s }) => (s!.settings!.graphCaptureRefused as string[] | undefined) ?? []).map((m) => m.replace(/^[^:]*: /, '')))];
  if (refused.length) lines.push(`Where it was refused, ORT said: ${refused.map((m) => `"${m.trim()}"`).join('; ')}.`);
  lines.push('', ...Object.entries(doc.method).map(([k, v]) => `- ${k}: ${v}`));
  for (const note of doc.notes ?? []) lines.push(`- ${note}`);
  lines.push('', '| model | system | compile s | process start to first output ms | load ms | first run ms | first output, warm shader cache ms | warm median ms | warm p90 ms | runs | peak GPU MiB | peak RSS MiB | max abs err vs onnxruntime-node | tokens/s |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    for (const s of r.systems!) {
      if (s.error) {
        lines.push(`| ${r.model} | ${s.system} | ${s.compileMs === undefined ? '-' : num(s.compileMs / 1000, 2)} | failed: ${esc(s.error.split('\n')[0]!.slice(0, 160)).replace(/\|/g, '\\|')} |||||||||||`);
        continue;
      }
      const sys = s.system === 'flashmemc-stream' && s.budgetBytes ? `flashmemc-stream (budget ${num(s.budgetBytes / MIB, 2)} MiB)` : s.system;
      const importMs = s.coldStart!.importMs ? ` (+${ms(s.coldStart!.importMs)} import)` : '';
      lines.push(`| ${r.model} | ${sys} | ${s.compileMs === undefined ? '-' : num(s.compileMs / 1000, 2)} | ${ms(s.coldStart!.processStartToFirstOutputMs)} | ${ms(s.coldStart!.loadMs)}${importMs} | ${ms(s.coldStart!.firstRunMs)} | ${ms(s.coldStartWarmShaderCache?.processStartToFirstOutputMs)} | ${ms(s.warm!.medianMs)} | ${ms(s.warm!.p90Ms)} | ${s.warm!.warmup}+${s.warm!.runs} | ${num(s.peakGpuBytes! / MIB)} | ${num(s.peakHostRssBytes! / MIB, 0)} | ${s.agreement!.maxAbsError.toExponential(2)} | ${s.tokensPerSecond ? num(s.tokensPerSecond.prefill) : '-'} |`);
    }
  }
  lines.push('', 'Ratios flashmemc / ONNX Runtime Web within the same run (below 1: flashmemc smaller or faster; load compares loadBundle with ORT import + session create):', '');
  lines.push('| model | ratio | process start to first output | same, warm shader cache | load | warm median | warm p90 | peak GPU bytes | peak host RSS |', '|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    for (const [name, q] of Object.entries(r.ratios ?? {})) {
      lines.push(`| ${r.model} | ${name} | ${num(q.processStartToFirstOutput, 2)} | ${num(q.processStartToFirstOutputWarmShaderCache, 2)} | ${num(q.load, 2)} | ${num(q.warmMedian, 2)} | ${num(q.warmP90, 2)} | ${num(q.peakGpuBytes, 2)} | ${num(q.peakHostRss, 2)} |`);
    }
  }
  const seq = rows.filter((r) => r.flashmemcSequenceMode);
  for (const r of seq) lines.push('', `${r.model} (${r.parts!.join(' -> ')}): ONNX Runtime Web holds one session per model; flashmemc: ${r.flashmemcSequenceMode}. A run executes every model once, in order.`);
  const pending = doc.rows.filter((r) => r.pending);
  if (pending.length) {
    lines.push('', 'Pending entries (declared in bench/sbs/models.ts, not run):', '');
    for (const r of pending) lines.push(`- ${r.model} (${r.kind}): ${r.pending}`);
  }
  lines.push('', ...charts.map((c) => `![${c}](${c})`), '');
  return lines.join('\n');
}

/** `where`: a machine name (bench/results/<machine>) or a folder holding side-by-side.json */
function render(where: string): void {
  const dir = existsSync(join(where, 'side-by-side.json')) ? where : join(packageRoot(), 'bench', 'results', where);
  const doc = JSON.parse(readFileSync(join(dir, 'side-by-side.json'), 'utf8')) as Doc;
  const machine = doc.machine;
  const rows = doc.rows.filter((r) => r.systems);
  const charts: string[] = [];
  const write = (name: string, svg: string) => {
    writeFileSync(join(dir, name), `${svg}\n`);
    charts.push(name);
  };
  write('sbs-latency.svg', barsSvg(`Warm latency per run on ${machine} (median, whisker p90)`, 'milliseconds, lower is better', rows, (s) => s.warm?.medianMs, (s) => s.warm?.p90Ms));
  write('sbs-cold-start.svg', barsSvg(`Cold start on ${machine}: process start to first output`, 'milliseconds, lower is better (flashmemc compile time not included), empty driver shader cache', rows, (s) => s.coldStart?.processStartToFirstOutputMs));
  if (rows.some((r) => r.systems!.some((s) => s.coldStartWarmShaderCache))) write('sbs-cold-start-warm-cache.svg', barsSvg(`Repeat visit on ${machine}: process start to first output, warm driver shader cache`, 'milliseconds, lower is better', rows, (s) => s.coldStartWarmShaderCache?.processStartToFirstOutputMs));
  write('sbs-peak-gpu.svg', barsSvg(`Peak GPU memory on ${machine} (live buffer and texture bytes)`, 'MiB, lower is better', rows, (s) => (s.peakGpuBytes === undefined ? undefined : s.peakGpuBytes / MIB)));
  const single = rows.find((r) => r.model === 'resnet50') ?? rows.find((r) => r.kind !== 'sequence');
  if (single) write(`sbs-memory-${single.model}.svg`, timelineSvg(single));
  for (const r of rows.filter((x) => x.kind === 'sequence')) write(`sbs-memory-${r.model}.svg`, timelineSvg(r));
  writeFileSync(join(dir, 'side-by-side.md'), markdown(doc, charts));
  console.log(`wrote ${join(dir, 'side-by-side.md')} and ${charts.length} charts`);
}

const machines = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const all = machines.length ? machines : readdirSync(join(packageRoot(), 'bench', 'results')).filter((m) => existsSync(join(packageRoot(), 'bench', 'results', m, 'side-by-side.json')));
for (const m of all) render(m);
