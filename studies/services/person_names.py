"""Keeping the person-name word rows of a study in step with its name columns."""

from __future__ import annotations

from typing import Any

from dicomsvc.sqlbatch import AFTER_FIRST, Statement
from studies.models import PERSON_NAME_WORD_LENGTH, PersonNameAttribute, PersonNameWord

# Study column holding the folded form of each person-name attribute with word rows.
SEARCH_COLUMNS = {
    PersonNameAttribute.PATIENT_NAME: "patient_name_search",
    PersonNameAttribute.REFERRING_PHYSICIAN_NAME: "referring_physician_name_search",
}


def person_name_words(search_form: str) -> list[str]:
    """Distinct words of a folded name (`dicomsvc.dicom_values.pn_search_form`), in order."""
    return list(dict.fromkeys(word[:PERSON_NAME_WORD_LENGTH] for word in search_form.split()))


def person_name_word_rows(
    *, partition_id: int, study_id: int, attribute: PersonNameAttribute, search_form: str
) -> list[PersonNameWord]:
    """The word rows of one folded name of a study (unsaved; also written by bench/qido_load.py)."""
    return [
        PersonNameWord(partition_id=partition_id, study_id=study_id, attribute=attribute, word=word, name=search_form)
        for word in person_name_words(search_form)
    ]


def person_name_words_statements(*, partition_id: int, study_id: int, columns: dict[str, Any]) -> list[Statement]:
    """Statements keeping a study's word rows in step with the name columns in `columns`.

    They need no earlier read of the study, so they can go to the database with the rest of a
    commit (`dicomsvc.sqlbatch`). When a name changed, the rows of words it no longer has are
    deleted, and its words are inserted, or given the new name where the old one had them too;
    when it did not change (rows of that name exist), nothing is written. The delete and the
    upsert touch different rows and read nothing the other writes, so they may be joined into
    one statement (`dicomsvc.sqlbatch.statements_joined`, as the store's commit does).
    """
    table = PersonNameWord._meta.db_table
    names = [(int(attr), columns[col]) for attr, col in SEARCH_COLUMNS.items() if columns.get(col) is not None]
    if not names:
        return []
    conditions: list[str] = []
    delete_params: list[object] = [study_id]
    rows: list[tuple[int, str, str]] = []
    for attribute, name in names:
        words = person_name_words(name)
        rows += [(attribute, word, name) for word in words]
        kept = f" AND word NOT IN ({', '.join(['%s'] * len(words))})" if words else ""
        conditions.append(f"(attribute = %s AND name <> %s{kept})")
        delete_params += [attribute, name, *words]
    delete: Statement = (
        f"DELETE FROM {table} WHERE study_id = %s AND ({' OR '.join(conditions)}){AFTER_FIRST}", delete_params
    )
    if not rows:
        return [delete]
    values = ", ".join(["(%s, %s, %s)"] * len(rows))
    upsert = (
        f"INSERT INTO {table} (partition_id, study_id, attribute, word, name) "
        f"SELECT %s, %s, v.column1, v.column2, v.column3 FROM (VALUES {values}) v WHERE NOT EXISTS "
        f"(SELECT 1 FROM {table} w WHERE w.study_id = %s AND w.attribute = v.column1 AND w.name = v.column3)"
        f"{AFTER_FIRST} "
        "ON CONFLICT (study_id, attribute, word) DO UPDATE SET name = excluded.name"
    )
    params = [partition_id, study_id, *(value for row in rows for value in row), study_id]
    return [delete, (upsert, params)]
