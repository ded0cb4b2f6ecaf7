"""Geography: JIS mesh codes (1 km .. 50 m), point -> mesh lookup, map tiles."""
