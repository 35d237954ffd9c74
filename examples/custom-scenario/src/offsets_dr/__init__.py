"""Disaster recovery of the stream offsets store: the PostgreSQL table in which the
platform's Spark streaming jobs commit the Kafka offsets they have processed. Lost or
rewound offsets make the jobs skip or replay data."""
