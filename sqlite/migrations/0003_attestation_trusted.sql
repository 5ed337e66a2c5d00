-- 0003: whether a credential's attestation chain verified against a
-- configured trust root at enrolment. Existing credentials were enrolled
-- without any trust root, so they start untrusted (0).

ALTER TABLE credentials ADD COLUMN attestation_trusted INTEGER NOT NULL DEFAULT 0;
