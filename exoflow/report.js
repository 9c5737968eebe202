// report.html's plots, drawn by BokehJS from the Bars specs exoflow/plots.py writes into the page
// (<script type="application/json" id="exoflow-report-plots">: {element id: [spec, ...]}).
(function () {
  "use strict";
  const P = Bokeh.Plotting;
  const PLAIN = "0,0.[00]";    // 1,500,000 and 0.25, never 1.500e+6

  function bars(s) {
    const source = new Bokeh.ColumnDataSource({data: s.data, name: s.name});
    const opts = {title: s.title, height: 300, sizing_mode: "stretch_width", toolbar_location: null, tools: ""};
    if (!s.numeric) {
      const cats = s.data[s.category].map(String);
      if (s.horizontal) opts.y_range = cats.slice().reverse(); else opts.x_range = cats;
    }
    if (s.category_label) opts[s.horizontal ? "y_axis_label" : "x_axis_label"] = s.category_label;
    if (s.value_label) opts[s.horizontal ? "x_axis_label" : "y_axis_label"] = s.value_label;
    const f = P.figure(opts);
    const stacked = s.values.length > 1;
    s.values.forEach((v, i) => {
      const lo = stacked ? {field: "_lo" + i} : 0;
      const hi = {field: stacked ? "_hi" + i : v};
      const glyph = {source: source, color: s.colors[i % s.colors.length]};
      if (stacked) glyph.legend_label = v;
      if (s.horizontal) {
        f.hbar(Object.assign(glyph, {y: {field: s.category}, left: lo, right: hi, height: 0.8}));
      } else {
        const width = typeof s.width === "string" ? {field: s.width} : s.width;
        f.vbar(Object.assign(glyph, {x: {field: s.category}, bottom: lo, top: hi, width: width}));
      }
    });
    // every number axis in plain digits (Bokeh's default switches to 1.000e+6 from 100,000 up)
    const valueAxes = s.horizontal ? f.below : f.left, categoryAxes = s.horizontal ? f.left : f.below;
    for (const [axes, format] of [[valueAxes, s.value_format || PLAIN], [categoryAxes, PLAIN]]) {
      for (const axis of axes) {
        if (axis instanceof Bokeh.LinearAxis) axis.formatter = new Bokeh.NumeralTickFormatter({format: format});
      }
    }
    if (!s.numeric && !s.horizontal) {
      for (const axis of f.below) axis.major_label_orientation = 0.8;
    }
    f.add_tools(new Bokeh.HoverTool({tooltips: s.tooltips}));
    return f;
  }

  const sections = JSON.parse(document.getElementById("exoflow-report-plots").textContent);
  for (const [id, specs] of Object.entries(sections)) {
    const figs = specs.map(bars);
    const rows = [];
    for (let i = 0; i < figs.length; i += 2) rows.push(figs.slice(i, i + 2));
    if (rows.length) P.show(P.gridplot(rows, {sizing_mode: "stretch_width", toolbar_location: null}),
                            document.getElementById(id));
  }
})();
