"""team coding: assignment designs and each coder's assigned texts, experts' adjudicated gold
codes, and with every code its first label, the coder's note, the codebook version it was
made under and when the text was opened

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('human_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_label', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('codebook_version', sa.Integer(), nullable=True))
    with op.batch_alter_table('code_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('codebook_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True))
    # The first code of every existing row: its earliest event, else the code it holds.
    op.execute(
        "UPDATE human_codes SET first_label = COALESCE(("
        "SELECT ce.label FROM code_events ce WHERE ce.project_id = human_codes.project_id "
        "AND ce.doc_id = human_codes.doc_id AND ce.coder = human_codes.coder "
        "ORDER BY ce.at, ce.id LIMIT 1), blind_label, label)"
    )
    op.create_table(
        'assignment_designs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('sample_id', sa.Integer(), nullable=False),
        sa.Column('k', sa.Integer(), nullable=False),
        sa.Column('overlap', sa.Float(), nullable=True),
        sa.Column('coders', JSON, nullable=False),
        sa.Column('seed', sa.Integer(), nullable=False),
        sa.Column('n_texts', sa.Integer(), nullable=False),
        sa.Column('n_overlap', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['sample_id'], ['validation_samples.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_assignment_designs_project_id', 'assignment_designs', ['project_id'], unique=False
    )
    op.create_index(
        'ix_assignment_designs_sample_id', 'assignment_designs', ['sample_id'], unique=False
    )
    op.create_table(
        'assignments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('sample_id', sa.Integer(), nullable=False),
        sa.Column('design_id', sa.Integer(), nullable=True),
        sa.Column('doc_id', sa.String(length=500), nullable=False),
        sa.Column('coder', sa.String(length=200), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('reassigned_from', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['design_id'], ['assignment_designs.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['sample_id'], ['validation_samples.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sample_id', 'doc_id', 'coder', name='uq_assignments_sample_doc_coder'),
    )
    op.create_index('ix_assignments_project_id', 'assignments', ['project_id'], unique=False)
    op.create_index(
        'ix_assignments_sample_coder', 'assignments', ['sample_id', 'coder'], unique=False
    )
    op.create_table(
        'adjudications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('doc_id', sa.String(length=500), nullable=False),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('adjudicator', sa.String(length=200), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('codebook_version', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('project_id', 'doc_id', name='uq_adjudications_doc'),
    )
    op.create_index('ix_adjudications_project_id', 'adjudications', ['project_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_adjudications_project_id', table_name='adjudications')
    op.drop_table('adjudications')
    op.drop_index('ix_assignments_sample_coder', table_name='assignments')
    op.drop_index('ix_assignments_project_id', table_name='assignments')
    op.drop_table('assignments')
    op.drop_index('ix_assignment_designs_sample_id', table_name='assignment_designs')
    op.drop_index('ix_assignment_designs_project_id', table_name='assignment_designs')
    op.drop_table('assignment_designs')
    with op.batch_alter_table('code_events', schema=None) as batch_op:
        batch_op.drop_column('opened_at')
        batch_op.drop_column('codebook_version')
        batch_op.drop_column('note')
    with op.batch_alter_table('human_codes', schema=None) as batch_op:
        batch_op.drop_column('codebook_version')
        batch_op.drop_column('note')
        batch_op.drop_column('first_label')
