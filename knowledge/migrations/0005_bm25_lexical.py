"""BM25F retrieval: lexemes with field weights, field lengths and per-corpus term statistics.

The SQL functions below are the one tokenizer of the lexical side: the generated columns
call them for documents, and retrieval calls `knowledge_query_lexemes` for queries, so both
are cut the same way. Statement-level triggers with transition tables keep the document
frequencies and total field lengths (`LexicalTerm`, `LexicalCorpus`) current in the writing
transaction, one aggregated upsert per statement (a COPY of 100,000 rows is one statement).
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.db import migrations, models

# Words: camelCase and ACRONYMWord boundaries split (`KubeletDown` → Kubelet Down, and
# the camelCase word kept whole too; `HTTPServer` → HTTP Server), then anything but letters
# and digits is a separator
# (snake_case, dotted paths, URLs), then numbers of one or two digits go (values, not words:
# `93.4%`, `5 times`); longer ones stay, being codes as often as not (`CHK-4471`, `exit code
# 137`, `503`), as do `5m`, `x509`, `http2`. On bench/runbooks.py keeping every number costs
# lexical recall@1 0.036, dropping every one gains nothing over this. `english` then lower-cases, drops stop words and stems.
# The functions are IMMUTABLE (generated columns require it): `english` is a constant
# configuration, and array_to_string over varchar[] has no locale-dependent output.
FUNCTIONS = r"""
CREATE FUNCTION knowledge_words(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT regexp_replace(
           regexp_replace(
             regexp_replace(
               regexp_replace($1, '([[:lower:][:digit:]])([[:upper:]])', '\1 \2', 'g'),
               '([[:upper:]]+)([[:upper:]][[:lower:]])', '\1 \2', 'g'),
             '[^[:alnum:]]+', ' ', 'g'),
           '(^| )[[:digit:]]{1,2}(?= |$)', ' ', 'g')
    -- camelCase identifiers are kept whole as well: `KeyError` matches `keyerror`, `key error`
    -- and, as a rarer term than either part, weighs more than they do.
    || ' ' || array_to_string(
         ARRAY(SELECT m[1] FROM regexp_matches($1, '([[:alpha:]][[:alnum:]]*[[:lower:]][[:upper:]][[:alnum:]]*)', 'g') AS m),
         ' ')
$$;

CREATE FUNCTION knowledge_field_lexemes(text, "char") RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
  SELECT setweight(to_tsvector('english'::regconfig, coalesce(knowledge_words($1), '')), $2)
$$;

-- A knowledge entry: title (A), tags (B), body (D).
CREATE FUNCTION knowledge_lexemes(text, varchar[], text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
  SELECT knowledge_field_lexemes($1, 'A')
      || knowledge_field_lexemes(array_to_string($2, ' '), 'B')
      || knowledge_field_lexemes($3, 'D')
$$;

-- A one-field document (an incident signature): body (D).
CREATE FUNCTION knowledge_lexemes(text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
  SELECT knowledge_field_lexemes($1, 'D')
$$;

CREATE FUNCTION knowledge_term_count(text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
  SELECT length(knowledge_field_lexemes($1, 'D'))
$$;

-- A query's distinct lexemes, cut exactly as documents are.
CREATE FUNCTION knowledge_query_lexemes(text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
  SELECT tsvector_to_array(knowledge_field_lexemes($1, 'D'))
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS knowledge_query_lexemes(text);
DROP FUNCTION IF EXISTS knowledge_term_count(text);
DROP FUNCTION IF EXISTS knowledge_lexemes(text);
DROP FUNCTION IF EXISTS knowledge_lexemes(text, varchar[], text);
DROP FUNCTION IF EXISTS knowledge_field_lexemes(text, "char");
DROP FUNCTION IF EXISTS knowledge_words(text);
"""

# TG_ARGV: the corpus name, and the SQL for a row's title length (signatures have no title).
# Rows are aggregated per statement; the upsert goes in term order so that two writers
# touching the same terms lock them in the same order (no deadlock). An UPDATE that leaves
# the lexemes as they were (an approval id back-filled, a re-import of an unchanged file)
# changes nothing.
TRIGGERS = r"""
CREATE FUNCTION knowledge_count_terms() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  corpus_name text := TG_ARGV[0];
  title_sql text := TG_ARGV[1];
  changes text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    changes := format('SELECT 1 AS sign, n.lexemes, %s AS title_length, n.body_length FROM new_rows n',
                      replace(title_sql, '$row', 'n'));
  ELSIF TG_OP = 'DELETE' THEN
    changes := format('SELECT -1 AS sign, o.lexemes, %s AS title_length, o.body_length FROM old_rows o',
                      replace(title_sql, '$row', 'o'));
  ELSE
    changes := format(
      'SELECT -1 AS sign, o.lexemes, %1$s AS title_length, o.body_length'
      ' FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE n.lexemes IS DISTINCT FROM o.lexemes'
      ' UNION ALL SELECT 1, n.lexemes, %2$s, n.body_length'
      ' FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE n.lexemes IS DISTINCT FROM o.lexemes',
      replace(title_sql, '$row', 'o'), replace(title_sql, '$row', 'n'));
  END IF;
  EXECUTE format(
    'INSERT INTO knowledge_lexicalterm AS t (corpus, term, documents)'
    ' SELECT %L, u.lexeme, sum(c.sign) FROM (%s) c, unnest(c.lexemes) u'
    ' GROUP BY u.lexeme HAVING sum(c.sign) <> 0 ORDER BY u.lexeme'
    ' ON CONFLICT (corpus, term) DO UPDATE SET documents = t.documents + EXCLUDED.documents',
    corpus_name, changes);
  EXECUTE format(
    'INSERT INTO knowledge_lexicalcorpus AS s (name, documents, title_length, body_length)'
    ' SELECT %L, coalesce(sum(c.sign), 0), coalesce(sum(c.sign * c.title_length), 0),'
    ' coalesce(sum(c.sign * c.body_length), 0) FROM (%s) c'
    ' ON CONFLICT (name) DO UPDATE SET documents = s.documents + EXCLUDED.documents,'
    ' title_length = s.title_length + EXCLUDED.title_length, body_length = s.body_length + EXCLUDED.body_length',
    corpus_name, changes);
  -- Terms no document has any more: a later idf lookup finds nothing, as for a new word.
  DELETE FROM knowledge_lexicalterm WHERE corpus = corpus_name AND documents <= 0;
  RETURN NULL;
END
$$;

CREATE TRIGGER knowledge_terms_insert AFTER INSERT ON knowledge_knowledgeentry
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION knowledge_count_terms('knowledge', '$row.title_length');
CREATE TRIGGER knowledge_terms_update AFTER UPDATE ON knowledge_knowledgeentry
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION knowledge_count_terms('knowledge', '$row.title_length');
CREATE TRIGGER knowledge_terms_delete AFTER DELETE ON knowledge_knowledgeentry
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION knowledge_count_terms('knowledge', '$row.title_length');
CREATE TRIGGER signature_terms_insert AFTER INSERT ON knowledge_incidentsignature
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION knowledge_count_terms('signatures', '0');
CREATE TRIGGER signature_terms_update AFTER UPDATE ON knowledge_incidentsignature
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION knowledge_count_terms('signatures', '0');
CREATE TRIGGER signature_terms_delete AFTER DELETE ON knowledge_incidentsignature
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION knowledge_count_terms('signatures', '0');

-- The rows that exist already.
INSERT INTO knowledge_lexicalterm (corpus, term, documents)
  SELECT 'knowledge', u.lexeme, count(*) FROM knowledge_knowledgeentry e, unnest(e.lexemes) u GROUP BY u.lexeme;
INSERT INTO knowledge_lexicalcorpus (name, documents, title_length, body_length)
  SELECT 'knowledge', count(*), coalesce(sum(title_length), 0), coalesce(sum(body_length), 0)
  FROM knowledge_knowledgeentry;
INSERT INTO knowledge_lexicalterm (corpus, term, documents)
  SELECT 'signatures', u.lexeme, count(*) FROM knowledge_incidentsignature s, unnest(s.lexemes) u GROUP BY u.lexeme;
INSERT INTO knowledge_lexicalcorpus (name, documents, title_length, body_length)
  SELECT 'signatures', count(*), 0, coalesce(sum(body_length), 0) FROM knowledge_incidentsignature;
"""

# Vectors in the row, not in TOAST: a pgvector column is EXTERNAL by default, and with a body
# and lexemes beside it the row passes the 2 kB TOAST threshold, so the vector (the largest
# attribute) went out of line and every distance computed from the heap cost a TOAST index
# lookup. MAIN moves the body and lexemes out first. Rows written before keep their layout
# until rewritten (`manage.py reembed`).
INLINE_VECTORS = """
ALTER TABLE knowledge_knowledgeentry ALTER COLUMN embedding SET STORAGE MAIN;
ALTER TABLE knowledge_incidentsignature ALTER COLUMN embedding SET STORAGE MAIN;
"""
TOASTED_VECTORS = """
ALTER TABLE knowledge_knowledgeentry ALTER COLUMN embedding SET STORAGE EXTERNAL;
ALTER TABLE knowledge_incidentsignature ALTER COLUMN embedding SET STORAGE EXTERNAL;
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS knowledge_terms_insert ON knowledge_knowledgeentry;
DROP TRIGGER IF EXISTS knowledge_terms_update ON knowledge_knowledgeentry;
DROP TRIGGER IF EXISTS knowledge_terms_delete ON knowledge_knowledgeentry;
DROP TRIGGER IF EXISTS signature_terms_insert ON knowledge_incidentsignature;
DROP TRIGGER IF EXISTS signature_terms_update ON knowledge_incidentsignature;
DROP TRIGGER IF EXISTS signature_terms_delete ON knowledge_incidentsignature;
DROP FUNCTION IF EXISTS knowledge_count_terms();
DELETE FROM knowledge_lexicalterm;
DELETE FROM knowledge_lexicalcorpus;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0006_ingest_counter_outcome_length"),
        ("knowledge", "0004_knowledge_index_tuning"),
    ]

    operations = [
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.CreateModel(
            name="LexicalCorpus",
            fields=[
                ("name", models.CharField(max_length=20, primary_key=True, serialize=False)),
                ("documents", models.BigIntegerField(default=0)),
                (
                    "title_length",
                    models.BigIntegerField(default=0, help_text="Sum of the documents' title lengths (lexemes)."),
                ),
                (
                    "body_length",
                    models.BigIntegerField(default=0, help_text="Sum of the documents' body lengths (lexemes)."),
                ),
            ],
            options={
                "verbose_name_plural": "lexical corpora",
            },
        ),
        migrations.CreateModel(
            name="LexicalTerm",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "corpus", "term", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("corpus", models.CharField(max_length=20)),
                ("term", models.TextField()),
                ("documents", models.IntegerField()),
            ],
        ),
        migrations.RemoveIndex(
            model_name="incidentsignature",
            name="incident_signature_search_gin",
        ),
        migrations.RemoveIndex(
            model_name="knowledgeentry",
            name="knowledge_search_gin",
        ),
        migrations.RemoveField(
            model_name="incidentsignature",
            name="search_vector",
        ),
        migrations.RemoveField(
            model_name="knowledgeentry",
            name="search_vector",
        ),
        migrations.AddField(
            model_name="incidentsignature",
            name="body_length",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Func(
                    models.F("text"), function="knowledge_term_count", output_field=models.IntegerField()
                ),
                output_field=models.IntegerField(),
            ),
        ),
        migrations.AddField(
            model_name="incidentsignature",
            name="lexemes",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Func(
                    models.F("text"),
                    function="knowledge_lexemes",
                    output_field=django.contrib.postgres.search.SearchVectorField(),
                ),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.AddField(
            model_name="knowledgeentry",
            name="body_length",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Func(
                    models.F("body"), function="knowledge_term_count", output_field=models.IntegerField()
                ),
                output_field=models.IntegerField(),
            ),
        ),
        migrations.AddField(
            model_name="knowledgeentry",
            name="lexemes",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Func(
                    models.F("title"),
                    models.F("tags"),
                    models.F("body"),
                    function="knowledge_lexemes",
                    output_field=django.contrib.postgres.search.SearchVectorField(),
                ),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.AddField(
            model_name="knowledgeentry",
            name="title_length",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Func(
                    models.F("title"), function="knowledge_term_count", output_field=models.IntegerField()
                ),
                output_field=models.IntegerField(),
            ),
        ),
        migrations.AddIndex(
            model_name="incidentsignature",
            index=django.contrib.postgres.indexes.GinIndex(fields=["lexemes"], name="incident_signature_lexemes_gin"),
        ),
        migrations.AddIndex(
            model_name="knowledgeentry",
            index=django.contrib.postgres.indexes.GinIndex(fields=["lexemes"], name="knowledge_lexemes_gin"),
        ),
        migrations.RunSQL(TRIGGERS, DROP_TRIGGERS),
        migrations.RunSQL(INLINE_VECTORS, TOASTED_VECTORS),
    ]
