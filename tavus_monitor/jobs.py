"""Replica trainings and video generations as jobs: latest status, progress, links."""

from __future__ import annotations

from dataclasses import dataclass

from . import callbacks as cb
from .events import Event, Family, Severity


@dataclass(frozen=True, slots=True)
class Job:
    kind: str
    """``replica`` or ``video``."""
    subject_id: str
    name: str | None
    status: str
    progress: str | None
    message: str | None
    """The error when the job failed (for a video, ``error_details`` before the generic
    ``status_details``), else the status message, when there is one."""
    hosted_url: str | None
    stream_url: str | None
    download_url: str | None
    event_id: int
    received_at: float
    severity: Severity

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject_id}"

    @property
    def links(self) -> dict[str, str]:
        """The links that exist, by name: hosted, stream, download."""
        found = {
            "hosted": self.hosted_url,
            "stream": self.stream_url,
            "download": self.download_url,
        }
        return {name: url for name, url in found.items() if url}


def job_from_event(event: Event) -> Job | None:
    """The job a replica or video callback reports on; None for other families."""
    if event.family not in (Family.REPLICA, Family.VIDEO) or not isinstance(event.payload, dict):
        return None
    payload = event.payload
    status = event.event_type.split(".", 1)[1] if "." in event.event_type else "unknown"
    if event.family is Family.REPLICA:
        return Job(
            kind="replica",
            subject_id=event.subject_id or "(no id)",
            name=cb.as_text(payload.get("replica_name")),
            status=status,
            progress=cb.as_text(payload.get("training_progress")),
            message=cb.as_text(payload.get("error_message")),
            hosted_url=None,
            stream_url=None,
            download_url=None,
            event_id=event.id,
            received_at=event.received_at,
            severity=event.severity,
        )
    message = (
        cb.video_error(payload) if status == "error" else cb.as_text(payload.get("status_details"))
    )
    return Job(
        kind="video",
        subject_id=event.subject_id or "(no id)",
        name=cb.as_text(payload.get("video_name")),
        status=status,
        progress=cb.as_text(payload.get("generation_progress")),
        message=message,
        hosted_url=cb.as_text(payload.get("hosted_url")),
        stream_url=cb.as_text(payload.get("stream_url")),
        download_url=cb.as_text(payload.get("download_url")),
        event_id=event.id,
        received_at=event.received_at,
        severity=event.severity,
    )
