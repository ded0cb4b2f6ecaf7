// The mesh under the mouse on the cluster map: code, size, cluster number and name in a tooltip.
// The map is server-rendered PNG tiles, so the mesh is looked up on the server (/api/mesh-at):
// at most one request per 50 m cell the mouse enters, none while one is in flight for the same cell,
// and the newest request wins (older ones are aborted).
(function () {
  const state = {cell: null, timer: null, controller: null, box: null, last: null};
  const WAIT_MS = 60;  // trailing throttle: the lookup starts once the mouse rests this long in a cell

  function box(map) {
    const container = map.getContainer();
    if (!state.box || state.box.parentNode !== container) {
      state.box = document.createElement("div");
      state.box.className = "mesh-hover";
      state.box.setAttribute("role", "tooltip");
      state.box.style.display = "none";
      container.appendChild(state.box);
    }
    return state.box;
  }

  function show(map, point, data) {
    const el = box(map);
    if (!data || data.code === undefined) { el.style.display = "none"; return; }
    el.replaceChildren();
    const head = document.createElement("div");
    head.className = "mesh-hover-code";
    head.textContent = data.code + " (" + data.size + " m" + (data.complemented ? ", complemented" : "") + ")";
    const line = document.createElement("div");
    line.className = "mesh-hover-cluster";
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = data.colour;
    line.appendChild(sw);
    line.appendChild(document.createTextNode(" cluster " + data.cluster + " of " + data.k + ": " + data.name));
    el.appendChild(head);
    el.appendChild(line);
    el.style.left = (point.x + 14) + "px";
    el.style.top = (point.y + 14) + "px";
    el.style.display = "block";
  }

  function query() {
    const q = new URLSearchParams(window.location.search);
    return {ds: q.get("ds"), k: q.get("k") || "10"};
  }

  window.meshMap = Object.assign({}, window.meshMap, {
    hover: function (e, ctx) {
      const map = ctx.map;
      const {ds, k} = query();
      if (!ds || !e.latlng) { return; }
      const cell = ds + "|" + k + "|" + Math.floor(e.latlng.lat * 2400) + "|" + Math.floor((e.latlng.lng - 100) * 1600);
      const point = e.containerPoint;
      if (cell === state.cell) {  // same cell: move the tooltip along, no request
        if (state.last) { show(map, point, state.last); }
        return;
      }
      state.cell = cell;
      state.last = null;
      box(map).style.display = "none";
      clearTimeout(state.timer);
      state.timer = setTimeout(function () {
        if (state.controller) { state.controller.abort(); }
        state.controller = new AbortController();
        const url = "/api/mesh-at?" + new URLSearchParams({ds: ds, k: k, lat: e.latlng.lat, lon: e.latlng.lng});
        fetch(url, {signal: state.controller.signal})
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (data) {
            if (state.cell !== cell) { return; }
            state.last = data;
            show(map, point, data);
          })
          .catch(function () {});  // aborted by a newer lookup
      }, WAIT_MS);
    },
    hoverOut: function (e, ctx) {
      clearTimeout(state.timer);
      state.cell = null;
      state.last = null;
      if (state.box) { state.box.style.display = "none"; }
    }
  });
})();
