// Owns the SVG chart of a run (hand-written, no dependency): req/s and CPU µs per request, one bar per target.

import { fmt } from '../lib.js';
import { SCENARIOS } from './scenarios.js';

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A "nice" axis maximum and step (1, 2, 2.5 or 5 x 10^k) for values up to `max`. */
function niceAxis(max, ticks = 5) {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
  return { top: Math.ceil(max / step) * step, step };
}

const COLORS = { corelb: '#1f6feb', native: '#6e7781', node: '#bf8700', origin: '#afb8c1' };

/**
 * Two stacked panels for one scenario: req/s (higher is better) and CPU µs per request of the
 * target process (lower is better), one bar per target, values printed on the bars.
 */
export function svgChart(rows, scenario, meta) {
  const data = rows.filter((r) => r.scenario === scenario && !r.error);
  const W = 960;
  const left = 90;
  const right = 20;
  const panelH = 230;
  const top = 100;
  const gap = 95; // room for the x labels under each panel
  const H = top + 2 * (panelH + gap) + 20;
  const n = Math.max(1, data.length);
  const slot = (W - left - right) / n;
  const barW = Math.min(70, slot * 0.6);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="26" text-anchor="middle" font-size="18" font-weight="600" fill="#24292f">corelb and peers: ${esc(SCENARIOS[scenario]?.what ?? scenario)}</text>`);
  out.push(
    `<text x="${W / 2}" y="48" text-anchor="middle" font-size="12" fill="#57606a">${esc(
      `${meta.date.slice(0, 16).replace('T', ' ')} UTC · ${meta.cpus} shared CPUs (${meta.cpuModel}) · ` +
        `${meta.scenarios?.[scenario]?.load ?? 'autocannon'}, ${SCENARIOS[scenario]?.connections(meta.opts)} connections · ` +
        `${(meta.rounds ?? 1) > 1 ? `median of ${meta.rounds} rounds of ${meta.durationSec} s` : `${meta.durationSec} s per bar`} · load avg ${meta.loadavgAtStart[0]} → ${meta.loadavgAtEnd?.[0] ?? '?'}`,
    )}</text>`,
  );
  const panels = [
    { field: 'rps', title: 'requests per second (higher is better)', axis: 'req/s', digits: 0 },
    { field: 'cpuUsPerReq', title: 'CPU time of the proxy process per request, µs (lower is better)', axis: 'CPU µs / request', digits: 1 },
  ];
  panels.forEach((p, pi) => {
    const y0 = top + pi * (panelH + gap);
    const vals = data.map((r) => r[p.field]).filter(Number.isFinite);
    const { top: axTop, step } = niceAxis(Math.max(...vals, 0));
    const yOf = (v) => y0 + panelH - (v / axTop) * panelH;
    out.push(`<text x="${left}" y="${y0 - 10}" font-size="14" font-weight="600" fill="#24292f">${esc(p.title)}</text>`);
    for (let v = 0; v <= axTop + step / 2; v += step) {
      const y = yOf(v);
      out.push(`<line x1="${left}" x2="${W - right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${v === 0 ? '#57606a' : '#d0d7de'}" stroke-width="1"/>`);
      out.push(`<text x="${left - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#57606a">${esc(fmt(v, step < 1 ? 1 : 0))}</text>`);
    }
    const cy = y0 + panelH / 2;
    out.push(`<text x="22" y="${cy}" text-anchor="middle" font-size="12" fill="#24292f" transform="rotate(-90 22 ${cy})">${esc(p.axis)}</text>`);
    data.forEach((r, i) => {
      const v = r[p.field];
      const cx = left + slot * (i + 0.5);
      if (Number.isFinite(v)) {
        const y = yOf(v);
        out.push(`<rect x="${(cx - barW / 2).toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${(y0 + panelH - y).toFixed(1)}" fill="${COLORS[r.group] ?? '#8c959f'}"><title>${esc(`${r.label}: ${fmt(v, p.digits)}`)}</title></rect>`);
        out.push(`<text x="${cx.toFixed(1)}" y="${(y - 5).toFixed(1)}" text-anchor="middle" font-size="12" font-weight="600" fill="#24292f">${esc(fmt(v, p.digits))}</text>`);
      }
      // target label under the bar, split over two lines at the first space after ~10 chars
      const words = r.label.split(' ');
      const lines = [];
      let cur = '';
      for (const w of words) {
        if (cur && (cur + ' ' + w).length > 14) {
          lines.push(cur);
          cur = w;
        } else cur = cur ? cur + ' ' + w : w;
      }
      if (cur) lines.push(cur);
      lines.slice(0, 3).forEach((l, li) => {
        out.push(`<text x="${cx.toFixed(1)}" y="${(y0 + panelH + 18 + li * 15).toFixed(1)}" text-anchor="middle" font-size="12" fill="#24292f">${esc(l)}</text>`);
      });
    });
  });
  // legend
  const legend = [
    ['corelb', 'corelb'],
    ['native', 'nginx / HAProxy'],
    ['node', 'Node.js proxies'],
    ['origin', 'origin alone (no proxy)'],
  ];
  let lx = left;
  const ly = H - 14;
  for (const [g, text] of legend) {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLORS[g]}"/>`);
    out.push(`<text x="${lx + 17}" y="${ly}" font-size="12" fill="#24292f">${esc(text)}</text>`);
    lx += 30 + text.length * 7;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
