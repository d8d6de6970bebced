"""Read, curate and split support histories.

``read_history`` turns a CSV/TSV/JSONL/JSON file of past conversations into ``Conversation``
records, whatever its shape (pairs, long, dialogue, Twitter export); ``curate`` cleans them
(empty turns, duplicates, overlong turns, personal data, optional toxicity filter);
``split_conversations`` makes a deterministic train/validation split. ``read_corpus`` reads raw
text (Markdown with front matter, text files, text columns of tables) into ``Document`` records.
"""

from __future__ import annotations

from appkit.data.corpus import CorpusReport, read_corpus, split_front_matter
from appkit.data.curate import CurationReport, curate, truncate_text
from appkit.data.pii import scrub_pii
from appkit.data.readers import read_history, read_history_with_report
from appkit.data.report import ReadReport
from appkit.data.roles import KNOWN_SPEAKERS, parse_speaker_map
from appkit.data.split import split_conversations
from appkit.data.types import ROLES, Conversation, Document, Role, Turn

__all__ = [
    "KNOWN_SPEAKERS",
    "ROLES",
    "Conversation",
    "CorpusReport",
    "CurationReport",
    "Document",
    "ReadReport",
    "Role",
    "Turn",
    "curate",
    "parse_speaker_map",
    "read_corpus",
    "read_history",
    "read_history_with_report",
    "scrub_pii",
    "split_conversations",
    "split_front_matter",
    "truncate_text",
]
