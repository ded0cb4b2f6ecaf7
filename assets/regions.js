// Regions view: the target city's regions coloured from the server's list (hideout.fill[region]).
window.regionsView = Object.assign({}, window.regionsView, {
  style: function (feature, context) {
    const h = (context && context.hideout) || {};
    const fill = (h.fill || [])[feature.properties.region] || "#bdbdbd";
    return {fillColor: fill, fillOpacity: 0.85, color: "#444", weight: 0.4, smoothFactor: 0};
  }
});
