-- +goose Up
-- An authorization's used units are the units held by its charges that are not void. They
-- were recounted from every charge the authorization ever had after each change (issue 9: on
-- every attendance event, 0.7 ms and ~100 blocks, growing with the authorization's history).
-- Triggers now move them by each change of a charge that holds units (its insert, its void or
-- un-void, a change of its authorization or units, its delete), in the statement that makes
-- the change: they stay exact whoever writes the charge, in the same transaction. Changes of
-- status between the statuses that are not void (claims, remittances) do not fire them.
SELECT set_config('trellis.clinics', '*', true);

-- +goose StatementBegin
CREATE FUNCTION charges_authorization_usage() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.authorization_id IS NOT NULL AND OLD.status <> 'void' THEN
        UPDATE authorizations SET used_units = used_units - OLD.authorized_units WHERE id = OLD.authorization_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.authorization_id IS NOT NULL AND NEW.status <> 'void' THEN
        UPDATE authorizations SET used_units = used_units + NEW.authorized_units WHERE id = NEW.authorization_id;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER charges_authorization_usage_insert AFTER INSERT ON charges
    FOR EACH ROW WHEN (NEW.authorization_id IS NOT NULL AND NEW.status <> 'void')
    EXECUTE FUNCTION charges_authorization_usage();
CREATE TRIGGER charges_authorization_usage_update AFTER UPDATE OF status, authorization_id, authorized_units ON charges
    FOR EACH ROW WHEN ((OLD.authorization_id IS NOT NULL OR NEW.authorization_id IS NOT NULL)
        AND (OLD.authorization_id IS DISTINCT FROM NEW.authorization_id OR OLD.authorized_units <> NEW.authorized_units
            OR (OLD.status = 'void') <> (NEW.status = 'void')))
    EXECUTE FUNCTION charges_authorization_usage();
CREATE TRIGGER charges_authorization_usage_delete AFTER DELETE ON charges
    FOR EACH ROW WHEN (OLD.authorization_id IS NOT NULL AND OLD.status <> 'void')
    EXECUTE FUNCTION charges_authorization_usage();

-- The count the triggers start from, recounted once (the triggers' lock on charges keeps it
-- from moving meanwhile).
UPDATE authorizations a SET used_units = u.units
FROM (SELECT a2.id, coalesce(sum(c.authorized_units) FILTER (WHERE c.status <> 'void'), 0) AS units
    FROM authorizations a2 LEFT JOIN charges c ON c.authorization_id = a2.id GROUP BY a2.id) u
WHERE a.id = u.id AND a.used_units <> u.units;

-- +goose Down
DROP TRIGGER charges_authorization_usage_delete ON charges;
DROP TRIGGER charges_authorization_usage_update ON charges;
DROP TRIGGER charges_authorization_usage_insert ON charges;
DROP FUNCTION charges_authorization_usage();
