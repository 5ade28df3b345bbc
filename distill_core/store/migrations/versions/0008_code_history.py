"""coders' code history: the blind code kept when a code is revised after the LLM's label was
shown, and every code given as an event

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('human_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blind_label', sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column('revised_after_reveal', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        'code_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('doc_id', sa.String(length=500), nullable=False),
        sa.Column('coder', sa.String(length=200), nullable=False),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('after_reveal', sa.Boolean(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_code_events_project_id', 'code_events', ['project_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_code_events_project_id', table_name='code_events')
    op.drop_table('code_events')
    with op.batch_alter_table('human_codes', schema=None) as batch_op:
        batch_op.drop_column('revised_after_reveal')
        batch_op.drop_column('blind_label')
