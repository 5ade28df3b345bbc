"""student models, corpus prediction runs and predictions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa

from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'student_models',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('corpus_id', sa.Integer(), nullable=True),
        sa.Column('label_run_id', sa.Integer(), nullable=True),
        sa.Column('codebook_version_id', sa.Integer(), nullable=True),
        sa.Column('job_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('base_model', sa.String(length=500), nullable=False),
        sa.Column('path', sa.String(length=1000), nullable=True),
        sa.Column('args', JSONType, nullable=False),
        sa.Column('training', JSONType, nullable=False),
        sa.Column('meta', JSONType, nullable=False),
        sa.Column('comparison', JSONType, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['codebook_version_id'], ['codebook_versions.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['corpus_id'], ['corpora.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['label_run_id'], ['label_runs.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('student_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_student_models_project_id'), ['project_id'], unique=False)

    op.create_table(
        'prediction_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('model_id', sa.Integer(), nullable=False),
        sa.Column('corpus_id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('labels', JSONType, nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.Column('device', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['corpus_id'], ['corpora.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['model_id'], ['student_models.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('prediction_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prediction_runs_project_id'), ['project_id'], unique=False)

    op.create_table(
        'predictions',
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('doc_id', sa.String(length=500), nullable=False),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('probs', JSONType, nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['prediction_runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('run_id', 'doc_id'),
    )


def downgrade() -> None:
    op.drop_table('predictions')
    with op.batch_alter_table('prediction_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prediction_runs_project_id'))
    op.drop_table('prediction_runs')
    with op.batch_alter_table('student_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_student_models_project_id'))
    op.drop_table('student_models')
