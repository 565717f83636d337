// Charts drawn as inline SVG: bars (side by side or stacked, negative ones below zero) and
// lines over a run of months, with a value axis, an optional second axis, and a hover title
// on every bar and point. Colours come from the stylesheet, by each series' class.

import { h, s } from "./dom.js";

const WIDTH = 960;
const TOP = 14;
const BOTTOM = 34;

function niceStep(span) {
  if (!(span > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(span));
  for (const factor of [1, 2, 2.5, 5, 10]) {
    if (factor * power >= span) return factor * power;
  }
  return 10 * power;
}

/** 1234567 -> "1.23M", 45200 -> "45.2k": axis labels. */
export function compact(value) {
  const size = Math.abs(value);
  const trim = (number) => String(Number(number.toFixed(2)));
  if (size >= 1e9) return trim(value / 1e9) + "bn";
  if (size >= 1e6) return trim(value / 1e6) + "M";
  if (size >= 1e3) return trim(value / 1e3) + "k";
  return trim(value);
}

function domain(bars, stacked, lines) {
  let low = 0;
  let high = 0;
  const count = Math.max(0, ...bars.map((b) => b.values.length), ...lines.map((l) => l.values.length));
  for (let i = 0; i < count; i += 1) {
    if (stacked) {
      let up = 0;
      let down = 0;
      for (const bar of bars) {
        const value = bar.values[i] || 0;
        if (value > 0) up += value;
        else down += value;
      }
      high = Math.max(high, up);
      low = Math.min(low, down);
    } else {
      for (const bar of bars) {
        high = Math.max(high, bar.values[i] || 0);
        low = Math.min(low, bar.values[i] || 0);
      }
    }
    for (const line of lines) {
      high = Math.max(high, line.values[i] || 0);
      low = Math.min(low, line.values[i] || 0);
    }
  }
  if (high === low) high = low + 1;
  const step = niceStep((high - low) / 5);
  return { low: Math.floor(low / step) * step, high: Math.ceil(high / step) * step, step };
}

/**
 * A chart over `labels` (one per band, e.g. months).
 * bars: [{name, cls, values, titles}] drawn side by side, or stacked when `stacked`;
 * lines: [{name, cls, values, titles, area}]; values are plain numbers (major units);
 * axis: a function for the value axis' labels; right: {factor, label} for a second axis
 * showing the same scale times `factor` (ARR beside MRR).
 */
export function chart({ labels, bars = [], lines = [], stacked = false, axis = compact, right = null, height = 280, label = "" }) {
  const left = 72;
  const rightMargin = right ? 72 : 16;
  const plotWidth = WIDTH - left - rightMargin;
  const plotHeight = height - TOP - BOTTOM;
  const { low, high, step } = domain(bars, stacked, lines);
  const y = (value) => TOP + plotHeight - ((value - low) / (high - low)) * plotHeight;
  const band = plotWidth / Math.max(1, labels.length);
  const x = (index) => left + band * index + band / 2;

  const svg = s("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": label,
    preserveAspectRatio: "xMidYMid meet",
  });

  const grid = s("g", { class: "grid" });
  for (let tick = low; tick <= high + step / 2; tick += step) {
    const at = y(tick);
    grid.append(
      s("line", { x1: left, x2: left + plotWidth, y1: at, y2: at, class: Math.abs(tick) < step / 2 ? "zero" : null }),
      s("text", { x: left - 8, y: at + 4, class: "axis", "text-anchor": "end" }, axis(tick)),
    );
    if (right) {
      grid.append(s("text", { x: left + plotWidth + 8, y: at + 4, class: "axis" }, axis(tick * right.factor)));
    }
  }
  if (right) {
    grid.append(
      s("text", { x: WIDTH - 4, y: TOP - 2, class: "axis axis-name", "text-anchor": "end" }, right.label),
    );
  }
  svg.append(grid);

  const every = Math.max(1, Math.ceil(labels.length / 12));
  const names = s("g", { class: "x-labels" });
  labels.forEach((text, index) => {
    if (index % every === 0 || index === labels.length - 1) {
      names.append(s("text", { x: x(index), y: height - 12, class: "axis", "text-anchor": "middle" }, text));
    }
  });
  svg.append(names);

  const bandGroups = s("g", { class: "bars" });
  labels.forEach((_, index) => {
    const group = s("g", { class: "band", dataset: { index } });
    if (stacked) {
      const width = Math.min(36, band * 0.62);
      let up = 0;
      let down = 0;
      for (const bar of bars) {
        const value = bar.values[index] || 0;
        if (!value) continue;
        const from = value > 0 ? up : down;
        const to = from + value;
        if (value > 0) up = to;
        else down = to;
        group.append(
          s(
            "rect",
            { x: x(index) - width / 2, y: y(Math.max(from, to)), width, height: Math.max(1, Math.abs(y(from) - y(to))), class: `bar ${bar.cls}` },
            s("title", {}, bar.titles ? bar.titles[index] : `${bar.name}: ${value}`),
          ),
        );
      }
    } else if (bars.length) {
      const width = Math.min(28, (band * 0.72) / bars.length);
      bars.forEach((bar, which) => {
        const value = bar.values[index] || 0;
        const start = x(index) - (width * bars.length) / 2 + which * width;
        group.append(
          s(
            "rect",
            { x: start, y: y(Math.max(0, value)), width: width - 1, height: Math.max(value ? 1 : 0, Math.abs(y(0) - y(value))), class: `bar ${bar.cls}` },
            s("title", {}, bar.titles ? bar.titles[index] : `${bar.name}: ${value}`),
          ),
        );
      });
    }
    bandGroups.append(group);
  });
  svg.append(bandGroups);

  for (const line of lines) {
    const points = line.values.map((value, index) => `${x(index).toFixed(1)},${y(value || 0).toFixed(1)}`);
    if (line.area && points.length) {
      const base = y(Math.max(low, 0)).toFixed(1);
      svg.append(
        s("path", { d: `M${x(0).toFixed(1)},${base} L${points.join(" L")} L${x(points.length - 1).toFixed(1)},${base} Z`, class: `area ${line.cls}` }),
      );
    }
    svg.append(s("polyline", { points: points.join(" "), class: `line ${line.cls}` }));
    const dots = s("g", { class: `dots ${line.cls}` });
    line.values.forEach((value, index) => {
      dots.append(
        s("circle", { cx: x(index), cy: y(value || 0), r: labels.length > 30 ? 2 : 3.5, class: `dot ${line.cls}` },
          s("title", {}, line.titles ? line.titles[index] : `${line.name}: ${value}`)),
      );
    });
    svg.append(dots);
  }
  return svg;
}

/** The legend for a chart's series: a swatch of each one's colour and its name. */
export function legend(series) {
  return h(
    "ul",
    { class: "legend" },
    series.map((one) => h("li", {}, h("span", { class: `swatch ${one.cls}${one.line ? " as-line" : ""}` }), one.name)),
  );
}
