//! Pages of a long list (users, audit events): which page was asked for, clamped to a sane
//! range, and how many there are.

use serde::Serialize;

/// The page shown and the query's size.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Pagination {
    /// The page shown, from 1.
    pub page: i64,
    /// Rows per page.
    pub per_page: i64,
}

impl Pagination {
    /// Rows per page on the admin panel and the admin API.
    pub const PER_PAGE: i64 = 25;

    /// Page `requested` (1 when absent or below 1; never so large the offset overflows).
    pub fn new(requested: Option<i64>) -> Pagination {
        let per_page = Pagination::PER_PAGE;
        Pagination {
            page: requested.unwrap_or(1).clamp(1, i64::MAX / per_page),
            per_page,
        }
    }

    /// How many pages `total` rows make (at least 1).
    pub fn pages(&self, total: i64) -> i64 {
        ((total + self.per_page - 1) / self.per_page).max(1)
    }
}
