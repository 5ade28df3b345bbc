"""endpoints saved per project, their keys encrypted at rest

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from alembic import op
import sqlalchemy as sa

from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'project_endpoints',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('base_url', sa.String(length=1000), nullable=False),
        sa.Column('model', sa.String(length=200), nullable=False),
        sa.Column('params', JSONType, nullable=False),
        sa.Column('key_encrypted', sa.Text(), nullable=True),
        sa.Column('key_hint', sa.String(length=40), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('project_id', 'name', name='uq_project_endpoints_name'),
    )
    with op.batch_alter_table('project_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_endpoints_project_id'), ['project_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('project_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_endpoints_project_id'))
    op.drop_table('project_endpoints')
