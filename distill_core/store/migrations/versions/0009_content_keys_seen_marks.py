"""held out by content for the project's life: each sample item keeps its text's content key
(so a replaced corpus cannot change what was held out); codebook versions saved after the
held-out score was seen are marked

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sample_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_key', sa.String(length=64), nullable=True))
    with op.batch_alter_table('codebook_versions', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('after_test_seen', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    _backfill_content_keys()


def _backfill_content_keys() -> None:
    """The key of every existing sample item's text, read as the application reads it."""
    from distill_core.values import content_key

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT si.sample_id, si.doc_id, d.text FROM sample_items si "
            "JOIN validation_samples vs ON vs.id = si.sample_id "
            "JOIN documents d ON d.corpus_id = vs.corpus_id AND d.doc_id = si.doc_id"
        )
    ).all()
    update = sa.text(
        "UPDATE sample_items SET content_key = :key WHERE sample_id = :sample AND doc_id = :doc"
    )
    for sample_id, doc_id, text in rows:
        bind.execute(update, {"key": content_key(text), "sample": sample_id, "doc": doc_id})


def downgrade() -> None:
    with op.batch_alter_table('codebook_versions', schema=None) as batch_op:
        batch_op.drop_column('after_test_seen')
    with op.batch_alter_table('sample_items', schema=None) as batch_op:
        batch_op.drop_column('content_key')
