DROP FUNCTION {schema}.file_new(bigint, integer);
DROP TABLE {schema}.attempts;
DROP TABLE {schema}.deliveries;
DROP TABLE {schema}.events;
DROP TABLE {schema}.webhooks;
DROP TABLE {schema}.meta;
