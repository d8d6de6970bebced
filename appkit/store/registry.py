"""The model registry, training runs and writer documents (methods of appkit.store.Store)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from appkit.errors import NotFoundError, StorageError
from appkit.store.models import MODEL_STATUSES, RUN_STATUSES, DocumentEntry, ModelEntry, TrainingRun, utcnow
from appkit.store.records import DocumentRecord, ModelRecord, TrainingRunRecord, to_record

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# How a run can end (``running`` is how it starts).
RUN_END_STATUSES = tuple(s for s in RUN_STATUSES if s != "running")


class RegistryMixin:
    """Models, runs and documents; needs the ``_read``/``_write`` sessions of Store."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...

    # --- models -----------------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        app: str,
        path: str,
        *,
        base: str | None = None,
        preset: str | None = None,
        params: int | None = None,
        metrics: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        status: str = "candidate",
        replace: bool = False,
    ) -> ModelRecord:
        """Add a trained model to the registry (``status="active"`` also promotes it).

        Args:
            replace: a model with this name may exist already (e.g. a resumed run): overwrite
                its entry instead of refusing.

        Raises:
            StorageError: a model with this name exists (and not ``replace``), or the status
                is invalid.
        """
        if status not in MODEL_STATUSES:
            raise StorageError(f"model status {status!r} is not one of {', '.join(MODEL_STATUSES)}.")
        fields = dict(app=app, path=str(path), base=base, preset=preset, params=params, metrics=metrics, data=data)
        with self._write() as s:
            # Checked first for a clear message; the unique index still guards a racing twin.
            entry = s.scalars(select(ModelEntry).where(ModelEntry.name == name)).first()
            if entry is not None and not replace:
                raise StorageError(f"a model named {name!r} is already registered; pick another name.")
            if entry is None:
                entry = ModelEntry(name=name, status="candidate", **fields)
                s.add(entry)
            else:
                for key, value in fields.items():
                    setattr(entry, key, value)
            s.flush()
            if status == "active":
                _activate(s, entry)
            else:
                entry.status = status
            s.flush()
            return to_record(ModelRecord, entry)

    def get_model(self, name: str) -> ModelRecord:
        """A registered model by name."""
        with self._read() as s:
            return to_record(ModelRecord, _model(s, name))

    def list_models(self, app: str | None = None, status: str | None = None) -> list[ModelRecord]:
        """Registered models, newest first."""
        query = select(ModelEntry)
        if app is not None:
            query = query.where(ModelEntry.app == app)
        if status is not None:
            query = query.where(ModelEntry.status == status)
        with self._read() as s:
            rows = s.scalars(query.order_by(ModelEntry.created_at.desc(), ModelEntry.id.desc()))
            return [to_record(ModelRecord, m) for m in rows]

    def active_model(self, app: str) -> ModelRecord | None:
        """The model ``app`` serves now, or None if none was promoted."""
        with self._read() as s:
            entry = s.scalars(select(ModelEntry).where(ModelEntry.app == app, ModelEntry.status == "active")).first()
            return None if entry is None else to_record(ModelRecord, entry)

    def promote(self, name: str) -> ModelRecord:
        """Make ``name`` its app's active model; the previously active one is archived."""
        with self._write() as s:
            entry = _model(s, name)
            _activate(s, entry)
            s.flush()
            return to_record(ModelRecord, entry)

    def rollback(self, app: str) -> tuple[ModelRecord, ModelRecord]:
        """Undo the app's last promotion: the model active before it is active again.

        Returns (the model active again, the one it replaces, now archived). Rolling back
        twice goes back two promotions.

        Raises:
            NotFoundError: the app has no active model, or the previous one is no longer registered.
            StorageError: the active model was not promoted over another one.
        """
        with self._write() as s:
            _lock_app(s, app)
            current = s.scalars(select(ModelEntry).where(ModelEntry.app == app, ModelEntry.status == "active")).first()
            if current is None:
                raise NotFoundError(f"the {app} app has no active model: nothing to roll back.")
            if not current.previous:
                raise StorageError(f"{current.name!r} did not replace another {app} model when it was promoted: "
                                   "there is nothing to roll back to (see `appkit models list`).")
            previous = s.scalars(select(ModelEntry).where(ModelEntry.name == current.previous)).first()
            if previous is None or previous.app != app:
                raise NotFoundError(f"{current.name!r} replaced {current.previous!r}, which is no longer a registered "
                                    f"{app} model: promote another one with `appkit models promote NAME`.")
            # Archive before activating: the one-active-per-app index is checked per statement.
            current.status = "archived"
            s.flush()
            previous.status = "active"
            previous.promoted_at = utcnow()
            s.flush()
            return to_record(ModelRecord, previous), to_record(ModelRecord, current)

    def archive_model(self, name: str) -> ModelRecord:
        """Archive a model (its app then has no active model if it was the active one)."""
        with self._write() as s:
            entry = _model(s, name)
            entry.status = "archived"
            s.flush()
            return to_record(ModelRecord, entry)

    # --- training runs ----------------------------------------------------------------------

    def start_run(
        self,
        app: str,
        model_name: str | None = None,
        *,
        config: dict[str, Any] | None = None,
        data_fingerprint: str | None = None,
    ) -> TrainingRunRecord:
        """Record that a training run started."""
        with self._write() as s:
            run = TrainingRun(
                app=app, model_name=model_name, config=config, data_fingerprint=data_fingerprint, status="running"
            )
            s.add(run)
            s.flush()
            return to_record(TrainingRunRecord, run)

    def finish_run(
        self,
        run_id: int,
        status: str = "finished",
        *,
        metrics: dict[str, Any] | None = None,
        model_name: str | None = None,
    ) -> TrainingRunRecord:
        """Record how a run ended (finished, failed, interrupted) and its final metrics."""
        if status not in RUN_END_STATUSES:
            raise StorageError(f"a run ends as one of {', '.join(RUN_END_STATUSES)}, not {status!r}.")
        with self._write() as s:
            run = s.get(TrainingRun, run_id)
            if run is None:
                raise NotFoundError(f"training run {run_id} does not exist.")
            run.status = status
            run.ended_at = utcnow()
            if metrics is not None:
                run.metrics = metrics
            if model_name is not None:
                run.model_name = model_name
            s.flush()
            return to_record(TrainingRunRecord, run)

    def get_run(self, run_id: int) -> TrainingRunRecord:
        """One training run by id."""
        with self._read() as s:
            run = s.get(TrainingRun, run_id)
            if run is None:
                raise NotFoundError(f"training run {run_id} does not exist.")
            return to_record(TrainingRunRecord, run)

    def list_runs(self, app: str | None = None, limit: int = 50, *,
                  model_name: str | None = None) -> list[TrainingRunRecord]:
        """Training runs (of ``app``, for the model ``model_name``), newest first."""
        query = select(TrainingRun)
        if app is not None:
            query = query.where(TrainingRun.app == app)
        if model_name is not None:
            query = query.where(TrainingRun.model_name == model_name)
        with self._read() as s:
            rows = s.scalars(query.order_by(TrainingRun.id.desc()).limit(limit))
            return [to_record(TrainingRunRecord, r) for r in rows]

    # --- documents --------------------------------------------------------------------------

    def save_document(
        self,
        app: str,
        title: str,
        content: str,
        *,
        brief: dict[str, Any] | None = None,
        model_name: str | None = None,
        template_name: str | None = None,
        template_version: str | None = None,
    ) -> DocumentRecord:
        """Store a writer draft."""
        with self._write() as s:
            doc = DocumentEntry(
                app=app,
                title=title,
                content=content,
                brief=brief,
                model_name=model_name,
                template_name=template_name,
                template_version=template_version,
            )
            s.add(doc)
            s.flush()
            return to_record(DocumentRecord, doc)

    def get_document(self, document_id: int) -> DocumentRecord:
        """One draft by id."""
        with self._read() as s:
            doc = s.get(DocumentEntry, document_id)
            if doc is None:
                raise NotFoundError(f"document {document_id} does not exist.")
            return to_record(DocumentRecord, doc)

    def list_documents(self, app: str | None = None, limit: int = 50) -> list[DocumentRecord]:
        """Drafts, newest first."""
        query = select(DocumentEntry)
        if app is not None:
            query = query.where(DocumentEntry.app == app)
        with self._read() as s:
            rows = s.scalars(query.order_by(DocumentEntry.id.desc()).limit(limit))
            return [to_record(DocumentRecord, d) for d in rows]


def _model(s: Session, name: str) -> ModelEntry:
    entry = s.scalars(select(ModelEntry).where(ModelEntry.name == name)).first()
    if entry is None:
        raise NotFoundError(f"model {name!r} is not registered.")
    return entry


def _lock_app(s: Session, app: str) -> None:
    # Lock the app's models first so two concurrent promotions queue instead of both
    # archiving the old one and then colliding on the one-active-per-app index. In id order:
    # two transactions locking the same rows in different orders deadlock (seen in the tests).
    s.execute(select(ModelEntry.id).where(ModelEntry.app == app).order_by(ModelEntry.id).with_for_update())


def _activate(s: Session, entry: ModelEntry) -> None:
    _lock_app(s, entry.app)
    # Re-read the entry now that its row is locked: it was loaded before the lock, and if another
    # promotion archived it meanwhile, a stale "active" would make the assignment below a no-op
    # that SQLAlchemy never writes, leaving the app with no active model (seen under load on PostgreSQL).
    s.refresh(entry)
    if entry.status != "active":  # promoting the active model again changes nothing
        replaced = s.scalar(select(ModelEntry.name).where(
            ModelEntry.app == entry.app, ModelEntry.status == "active", ModelEntry.id != entry.id))
        entry.previous = replaced  # what `appkit models rollback` returns to
        entry.promoted_at = utcnow()
    # Archive before activating: the partial unique index is checked per statement.
    s.execute(
        update(ModelEntry)
        .where(ModelEntry.app == entry.app, ModelEntry.status == "active", ModelEntry.id != entry.id)
        .values(status="archived")
        .execution_options(synchronize_session=False)
    )
    entry.status = "active"

