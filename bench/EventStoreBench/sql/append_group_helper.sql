-- Helper of append-buffers.sh (not a migration): one group of p_n streams x p_k events through pf_append_group,
-- each stream appended at its current head, seq = version.
CREATE OR REPLACE FUNCTION mb_group(p_prefix text, p_client int, p_n int, p_k int, p_at timestamptz) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  streams text[]; expected bigint[]; counts int[]; ids uuid[]; types text[]; seqs bigint[]; dts timestamptz[]; recs timestamptz[];
  sus boolean[]; dat text[]; meta text[]; sch int[]; st text[]; hu timestamptz[]; r int;
BEGIN
  SELECT array_agg(s ORDER BY i), array_agg(coalesce(h.version, 0) ORDER BY i), array_agg(p_k ORDER BY i)
    INTO streams, expected, counts
  FROM (SELECT i, p_prefix || p_client || '-' || i AS s FROM generate_series(1, p_n) i) x LEFT JOIN pf_stream_heads h ON h.stream_id = x.s;
  SELECT array_agg(gen_random_uuid() ORDER BY j), array_agg('dose.delivered'::text ORDER BY j),
         array_agg(expected[1 + (j-1)/p_k] + 1 + (j-1)%p_k ORDER BY j),
         array_agg(p_at ORDER BY j), array_agg(p_at ORDER BY j), array_agg(false ORDER BY j),
         array_agg('{"volumeMl":0.0208,"kind":"basal","reservoirMl":18.5,"drug":"morphine"}'::text ORDER BY j),
         array_agg('{"hubId":"H1","msg":"' || j || '"}' ORDER BY j)
    INTO ids, types, seqs, dts, recs, sus, dat, meta
  FROM generate_series(1, p_n * p_k) j;
  SELECT array_agg(NULL::int), array_agg(NULL::text), array_agg(NULL::timestamptz) INTO sch, st, hu FROM generate_series(1, p_n);
  SELECT sum(g.inserted) INTO r FROM pf_append_group(streams, expected, counts, ids, types, seqs, dts, recs, sus, dat, meta, sch, st, hu) g;
  RETURN r;
END $$;
