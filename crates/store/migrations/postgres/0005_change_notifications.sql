-- Every write to a table whose rows lakests caches (users, memberships, groups, policies and
-- their attachments, credentials, external principals, token revocations) notifies the channel
-- lakests_invalidate when its transaction commits. Each lakests process LISTENs on it and
-- moves the generation of its caches, so a change made through one replica (or the CLI, or
-- by hand in psql) is seen by every other at once. Statement-level: one notification per
-- statement at most, and PostgreSQL folds identical notifications of one transaction into one.
-- Login audit records, grants and claimed token ids are not cached and do not notify.
CREATE FUNCTION lakests_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lakests_invalidate', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
CREATE TRIGGER user_groups_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON user_groups
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
CREATE TRIGGER groups_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
CREATE TRIGGER policies_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
CREATE TRIGGER user_policies_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON user_policies
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
CREATE TRIGGER group_policies_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON group_policies
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
CREATE TRIGGER credentials_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credentials
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
CREATE TRIGGER external_principals_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON external_principals
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
CREATE TRIGGER revoked_users_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON revoked_users
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
CREATE TRIGGER revoked_tokens_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION lakests_notify_change();
