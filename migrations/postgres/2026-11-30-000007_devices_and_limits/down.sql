DROP TABLE rate_counters;
DROP TABLE trusted_devices;
