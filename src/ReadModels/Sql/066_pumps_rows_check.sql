-- Issue 14 (h14t): the pumps page writes rows it knows exist with a plain UPDATE (no ON CONFLICT), and checks inside
-- its own batch that each such UPDATE found every row it meant to change (Projections:Pumps:KnownRowWrites). As with
-- pf_pumps_narrow_check (065), the page's COMMIT may be the last statement of the same batch, so the check cannot be
-- made on the client after the round trip: an error raised here skips the rest of the batch, COMMIT included, and the
-- page is rolled back and retried with the pumps forgotten from memory (so with the upsert).
CREATE OR REPLACE FUNCTION pf_pumps_rows_check(updated bigint, expected integer, what text) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    IF updated <> expected THEN
        RAISE EXCEPTION 'pumps: % % rows to update in place, % found; the page is retried with upserts', expected, what, updated
            USING ERRCODE = 'P0001';
    END IF;
    RETURN updated;
END
$$;
