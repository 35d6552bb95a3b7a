"""identity per structure

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:52:36.669064
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Identity moves from the beneficiary to one record per structure (a structure never
    # sees another's). No release stored identity on beneficiaries: their ciphertexts are
    # bound to that table by their associated data and are not carried over.
    op.create_table(
        "identity_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.Column("structure_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("index_version", sa.Integer(), nullable=False),
        sa.Column("idx_name_birth", sa.Integer(), nullable=True),
        sa.Column("idx_caf", sa.Integer(), nullable=True),
        sa.Column("idx_france_travail", sa.Integer(), nullable=True),
        sa.Column("nom", sa.Text(), nullable=True),
        sa.Column("prenom", sa.Text(), nullable=True),
        sa.Column("nom_naissance", sa.Text(), nullable=True),
        sa.Column("date_naissance", sa.Text(), nullable=True),
        sa.Column("numero_caf", sa.Text(), nullable=True),
        sa.Column("identifiant_france_travail", sa.Text(), nullable=True),
        sa.Column("adresse", sa.Text(), nullable=True),
        sa.Column("code_postal", sa.Text(), nullable=True),
        sa.Column("commune", sa.Text(), nullable=True),
        sa.Column("telephone", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiaries.id"],
            name=op.f("fk_identity_records_beneficiary_id_beneficiaries"),
        ),
        sa.ForeignKeyConstraint(
            ["structure_id"],
            ["structures.id"],
            name=op.f("fk_identity_records_structure_id_structures"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_records")),
        sa.UniqueConstraint(
            "beneficiary_id", "structure_id", name=op.f("uq_identity_records_beneficiary_id")
        ),
        sa.UniqueConstraint("uuid", name=op.f("uq_identity_records_uuid")),
    )
    with op.batch_alter_table("identity_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_records_beneficiary_id"), ["beneficiary_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_identity_records_idx_caf"), ["idx_caf"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_identity_records_idx_france_travail"),
            ["idx_france_travail"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_identity_records_idx_name_birth"), ["idx_name_birth"], unique=False
        )

    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_beneficiaries_idx_caf"))
        batch_op.drop_index(batch_op.f("ix_beneficiaries_idx_france_travail"))
        batch_op.drop_index(batch_op.f("ix_beneficiaries_idx_name_birth"))
        batch_op.drop_column("adresse")
        batch_op.drop_column("telephone")
        batch_op.drop_column("idx_caf")
        batch_op.drop_column("idx_france_travail")
        batch_op.drop_column("prenom")
        batch_op.drop_column("date_naissance")
        batch_op.drop_column("nom")
        batch_op.drop_column("numero_caf")
        batch_op.drop_column("idx_name_birth")
        batch_op.drop_column("code_postal")
        batch_op.drop_column("email")
        batch_op.drop_column("nom_naissance")
        batch_op.drop_column("index_version")
        batch_op.drop_column("identifiant_france_travail")
        batch_op.drop_column("commune")


def downgrade() -> None:
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("commune", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("identifiant_france_travail", sa.TEXT(), nullable=True))
        batch_op.add_column(
            sa.Column("index_version", sa.INTEGER(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("nom_naissance", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("email", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("code_postal", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("idx_name_birth", sa.INTEGER(), nullable=True))
        batch_op.add_column(sa.Column("numero_caf", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("nom", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("date_naissance", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("prenom", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("idx_france_travail", sa.INTEGER(), nullable=True))
        batch_op.add_column(sa.Column("idx_caf", sa.INTEGER(), nullable=True))
        batch_op.add_column(sa.Column("telephone", sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column("adresse", sa.TEXT(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_beneficiaries_idx_name_birth"), ["idx_name_birth"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_beneficiaries_idx_france_travail"), ["idx_france_travail"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_beneficiaries_idx_caf"), ["idx_caf"], unique=False)

    with op.batch_alter_table("identity_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_records_idx_name_birth"))
        batch_op.drop_index(batch_op.f("ix_identity_records_idx_france_travail"))
        batch_op.drop_index(batch_op.f("ix_identity_records_idx_caf"))
        batch_op.drop_index(batch_op.f("ix_identity_records_beneficiary_id"))

    op.drop_table("identity_records")
