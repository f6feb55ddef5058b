-- The claim/report hot path (benchmark milestone).
-- Depth-first order among ready tasks of equal priority: a task's stage is its node's longest
-- path from a root, and deeper stages are claimed first, so partitions that have started finish
-- before new ones start (results appear early and a task just made ready is taken at once).
ALTER TABLE tasks ADD COLUMN stage INTEGER NOT NULL DEFAULT 0;
DROP INDEX tasks_ready;
CREATE INDEX tasks_ready ON tasks (priority DESC, stage DESC, available_at, id) WHERE state = 'ready';
-- Two indexes every state change had to maintain, for reads that do not need them: a worker's
-- running tasks are found through tasks_lease (only running tasks are in it), an event's tasks
-- through the (event_id, node, partition) key.
DROP INDEX tasks_worker;
DROP INDEX tasks_event_state;
