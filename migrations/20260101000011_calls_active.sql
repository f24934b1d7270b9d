-- The ringing sweeper also looks for answered calls nobody's media reached.
CREATE INDEX calls_active ON calls (created_at) WHERE status = 'active';
