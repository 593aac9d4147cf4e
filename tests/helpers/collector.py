"""Small helpers shared by the collector tests."""

from sqlalchemy import func, select

from core.schema import BadRow, Event, Site


def basic(write_key):
    """The Authorization header a Segment SDK sends: the write key as the Basic user name."""
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def track(event="Product Viewed", anonymous_id="anon-1", **extra):
    """A minimal valid track message."""
    return {"type": "track", "event": event, "anonymousId": anonymous_id, **extra}


def counts(engine):
    """How many rows each table the collector writes holds."""
    with engine.connect() as conn:
        return {
            model.__tablename__: conn.scalar(select(func.count()).select_from(model)) for model in (Event, BadRow, Site)
        }


def stored(engine):
    """Every stored event as a dict, oldest first."""
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(Event.__table__).order_by(Event.id))]
