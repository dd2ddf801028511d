-- Issue 14 (h14r): the pumps page's narrow status update checks inside its own batch that it found every row it meant
-- to update. With Projections:CommitWithWrites the page's COMMIT is the last statement of the same batch, so the
-- check can no longer be made on the client after the round trip (the page would have committed): an error raised
-- here skips the rest of the batch, COMMIT included, and the page is rolled back and retried with full rows.
CREATE OR REPLACE FUNCTION pf_pumps_narrow_check(updated bigint, expected integer) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    IF updated <> expected THEN
        RAISE EXCEPTION 'pumps: % status rows to update in place, % found; the page is retried with full rows', expected, updated
            USING ERRCODE = 'P0001';
    END IF;
    RETURN updated;
END
$$;
