"""The `oci` runtime: pods' containers are OCI images run by runc (issue 11)."""
