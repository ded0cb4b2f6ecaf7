// Shareable state: keep the address bar in step with the view (no reload, no history entry).
// Synchronised maps: the two maps of the period comparison follow each other.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  meshes: {
    writeUrl: function (ds, k, kAny, selected, tab, kRange) {
      if (!ds) { return window.dash_clientside.no_update; }
      const q = new URLSearchParams();
      q.set("ds", ds);
      // The any-k box may hold what the server clamps (999 -> 50): the address says what is shown.
      let kShown = Number(kAny) || k || 10;
      if (Array.isArray(kRange)) { kShown = Math.min(kRange[1], Math.max(kRange[0], Math.floor(kShown))); }
      q.set("k", String(kShown));
      if (selected && selected.ds === ds && selected.code !== undefined) { q.set("mesh", String(selected.code)); }
      if (["diff", "train", "people", "regions"].includes(tab)) { q.set("view", tab); }
      window.history.replaceState(null, "", "?" + q.toString());
      return q.toString();
    },
    syncMaps: function (centerA, zoomA, centerB, zoomB) {
      const nu = window.dash_clientside.no_update;
      const trig = (window.dash_clientside.callback_context.triggered || []).map(t => t.prop_id);
      const same = (c1, z1, c2, z2) => c1 && c2 && z1 === z2 && Math.abs(c1[0] - c2[0]) < 1e-7 && Math.abs(c1[1] - c2[1]) < 1e-7;
      if (!centerA || !centerB || same(centerA, zoomA, centerB, zoomB)) { return [nu, nu]; }
      const fromA = trig.some(p => p.startsWith("diff-map-a."));
      if (fromA) { return [nu, {center: centerA, zoom: zoomA, transition: "setView"}]; }
      return [{center: centerB, zoom: zoomB, transition: "setView"}, nu];
    }
  }
});
