//! The fake ERP's memory: the products, the stock log (every change with a sequence number:
//! the checkpoints of `GetStockChanges`), the goods movements posted, and the drills' counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use shared::erp::{ErpProduct, GoodsMovement, Price};

/// A product and its units on hand.
pub struct Stocked {
    pub product: ErpProduct,
    pub on_hand: i64,
    pub changed_at: DateTime<Utc>,
}

/// One entry of the stock log.
pub struct StockChange {
    pub seq: u64,
    pub sku: String,
    pub on_hand: i64,
    pub at: DateTime<Utc>,
}

/// A goods movement as posted, with its document number.
pub struct Posted {
    pub number: String,
    pub movement: GoodsMovement,
}

/// Everything the fake ERP remembers.
pub struct Memory {
    pub products: BTreeMap<String, Stocked>,
    pub log: Vec<StockChange>,
    pub documents: HashMap<String, Posted>,
    pub calls: u64,
    pub fail_next: u32,
}

/// The memory behind a lock.
pub struct Store(Mutex<Memory>);

impl Store {
    /// The seeded products, one stock change each.
    pub fn seeded() -> Self {
        let seed = [
            ("KET-001", "Kettle", "kitchen", 2999, 10, true),
            ("MUG-002", "Mug", "kitchen", 750, 120, true),
            ("TEA-003", "Teapot", "kitchen", 3400, 5, true),
            ("LMP-004", "Desk lamp", "home", 4500, 0, true),
            ("TST-005", "Toaster", "kitchen", 3990, 3, false),
        ];
        let now = Utc::now();
        let mut memory = Memory {
            products: BTreeMap::new(),
            log: Vec::new(),
            documents: HashMap::new(),
            calls: 0,
            fail_next: 0,
        };
        for (sku, name, category, cents, on_hand, active) in seed {
            let product = ErpProduct {
                sku: sku.into(),
                name: name.into(),
                category: category.into(),
                price: Price::from_minor_units(cents, "EUR"),
                active,
            };
            memory.products.insert(
                sku.into(),
                Stocked {
                    product,
                    on_hand,
                    changed_at: now,
                },
            );
            memory.record(sku, on_hand, now);
        }
        Self(Mutex::new(memory))
    }

    pub fn lock(&self) -> MutexGuard<'_, Memory> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Memory {
    /// Sets a SKU's units on hand and logs the change; `false` for an unknown SKU.
    pub fn set_on_hand(&mut self, sku: &str, on_hand: i64) -> bool {
        let now = Utc::now();
        let Some(stocked) = self.products.get_mut(sku) else {
            return false;
        };
        stocked.on_hand = on_hand;
        self.record(sku, on_hand, now);
        true
    }

    fn record(&mut self, sku: &str, on_hand: i64, at: DateTime<Utc>) {
        let seq = self.log.last().map_or(1, |last| last.seq + 1);
        self.log.push(StockChange {
            seq,
            sku: sku.to_owned(),
            on_hand,
            at,
        });
    }

    /// The next document number, SAP material-document style (`49` and eight digits).
    pub fn next_document_number(&self) -> String {
        format!("49{:08}", self.documents.len() + 1)
    }
}
