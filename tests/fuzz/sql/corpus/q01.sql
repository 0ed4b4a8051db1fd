SELECT
TUMBLE_START(event_time, INTERVAL '1' MINUTE) AS window_start,
COUNT(*) AS page_views
FROM page_events
GROUP BY TUMBLE(event_time, INTERVAL '1' MINUTE);