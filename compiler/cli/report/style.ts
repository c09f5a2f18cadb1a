/** The report's stylesheet, inlined into the page (no external assets). */
export const REPORT_CSS = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --panel: #f5f7fa; --accent: #2f5d9b; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff; }
header, main, nav, footer { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 6px; color: var(--accent); }
.bundle-path { color: var(--muted); margin: 0 0 10px; font-family: ui-monospace, monospace; word-break: break-all; }
nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 14px; padding: 8px 0; margin: 8px 0 0; border-bottom: 1px solid var(--line); }
nav a { color: var(--accent); text-decoration: none; }
.tag { font-size: 12px; font-weight: 600; padding: 2px 8px; border-radius: 10px; background: #e4ecf7; color: var(--accent); vertical-align: middle; }
.facts { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
.fact { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; }
.fact dt { font-size: 11px; color: var(--muted); }
.fact dd { margin: 0; font-weight: 600; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name, td.weight, .node, td.label { font-family: ui-monospace, monospace; word-break: break-all; }
.node { color: var(--muted); }
td.streamed, tr.carrier td:nth-child(4) { color: #b23b3d; }
td.resident { color: #2f5d9b; }
details { margin: 4px 0; }
summary { cursor: pointer; color: var(--accent); }
details.wgsl summary { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
pre { background: #0f1420; color: #e6e9ef; padding: 10px 12px; border-radius: 6px; overflow: auto; max-height: 480px; font-size: 12px; }
figure { margin: 6px 0; overflow-x: auto; }
svg { max-width: 100%; height: auto; }
.timeline-chart rect { fill: #4e79a7; }
.timeline-chart rect.kind-dispatch { fill: #59a14f; }
.timeline-chart rect.kind-upload, .timeline-chart rect.kind-read { fill: #e15759; }
.timeline-chart rect.kind-copy { fill: #f28e2b; }
.timeline-chart rect.kind-gpu { fill: #76b7b2; }
footer { color: var(--muted); font-size: 12px; padding: 24px; }
`;
