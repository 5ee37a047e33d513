//! placeholder: the PostgreSQL store is being written.
