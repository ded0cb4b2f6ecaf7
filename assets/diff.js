// The period comparison in the address bar: ?view=diff&a=..&b=..&dk=..&by=..&thr=.. (thr absent:
// decided from the data). Runs after the map view's writeUrl (it listens to its sink), only on the
// diff tab, and adds its keys to what that one wrote.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  diff: {
    writeUrl: function (a, b, k, by, thr, _sink, tab) {
      if (tab !== "diff" || !a || !b) { return window.dash_clientside.no_update; }
      const q = new URLSearchParams(window.location.search);
      q.set("view", "diff");
      q.set("a", a);
      q.set("b", b);
      q.set("dk", String(k || 10));
      q.set("by", by || "change");
      if (typeof thr === "number" && isFinite(thr)) { q.set("thr", String(thr)); } else { q.delete("thr"); }
      window.history.replaceState(null, "", "?" + q.toString());
      return q.toString();
    }
  }
});
