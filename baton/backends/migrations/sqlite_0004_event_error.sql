-- Hardening: an event that cannot be expanded fails with its cause, kept on the event for status.
ALTER TABLE events ADD COLUMN error TEXT;
