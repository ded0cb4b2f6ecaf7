// Shareable state: keep the address bar in step with the view (no reload, no history entry).
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  meshes: {
    writeUrl: function (ds, k, kAny, selected, tab) {
      if (!ds) { return window.dash_clientside.no_update; }
      const q = new URLSearchParams();
      q.set("ds", ds);
      q.set("k", String(kAny || k || 10));
      if (selected && selected.ds === ds && selected.code !== undefined) { q.set("mesh", String(selected.code)); }
      if (tab === "diff") { q.set("view", "diff"); }
      window.history.replaceState(null, "", "?" + q.toString());
      return q.toString();
    }
  }
});
