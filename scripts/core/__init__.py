"""What steps and checks share, and the only part of scripts/ a check may import besides the model readers
(scripts/model/) and the file libraries: findings and their rendering, the folder layout, report I/O validated
against the schemas, atomic writes, and the one error type."""
