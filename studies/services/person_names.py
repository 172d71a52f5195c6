"""Keeping the person-name word rows of a study in step with its name columns."""

from __future__ import annotations

from typing import Any

from studies.models import PERSON_NAME_WORD_LENGTH, PersonNameAttribute, PersonNameWord, Study

# Study column holding the folded form of each person-name attribute with word rows.
SEARCH_COLUMNS = {
    PersonNameAttribute.PATIENT_NAME: "patient_name_search",
    PersonNameAttribute.REFERRING_PHYSICIAN_NAME: "referring_physician_name_search",
}


def person_name_words(search_form: str) -> list[str]:
    """Distinct words of a folded name (`studies.dicom.reader.pn_search_form`), in order."""
    return list(dict.fromkeys(word[:PERSON_NAME_WORD_LENGTH] for word in search_form.split()))


def person_name_word_rows(
    *, partition_id: int, study_id: int, attribute: PersonNameAttribute, search_form: str
) -> list[PersonNameWord]:
    """The word rows of one folded name of a study (unsaved; also written by bench/qido_load.py)."""
    return [
        PersonNameWord(partition_id=partition_id, study_id=study_id, attribute=attribute, word=word, name=search_form)
        for word in person_name_words(search_form)
    ]


def person_name_words_sync(*, study: Study, columns: dict[str, Any]) -> None:
    """Rewrite the word rows of every name whose folded form changes from `study` to `columns`.

    Call inside the transaction that writes the new column values, with `study` holding the
    values before the write (the store path has it locked with select_for_update).
    """
    for attribute, column in SEARCH_COLUMNS.items():
        new = columns.get(column)
        if new is None or new == getattr(study, column):
            continue
        PersonNameWord.objects.filter(study_id=study.pk, attribute=attribute).delete()
        PersonNameWord.objects.bulk_create(
            person_name_word_rows(
                partition_id=study.partition_id, study_id=study.pk, attribute=attribute, search_form=new
            )
        )
