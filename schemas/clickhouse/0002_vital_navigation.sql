-- Freshet analytics, version 2: the navigation type of each web-vitals
-- measurement (navigate, reload, back_forward, back_forward_cache,
-- prerender, restore), parallel to vital_names. Rows written before this
-- version hold an empty array.
ALTER TABLE rum_beacons ADD COLUMN vital_navigation_types Array(String) AFTER vital_ratings;
