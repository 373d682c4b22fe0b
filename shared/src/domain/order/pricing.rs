//! Pricing an order's lines against the catalogue: the rules an order is placed by before
//! stock is reserved (unknown or inactive products, stock per product over all its lines, one
//! currency per order), the total, and the units to reserve per product.

use std::collections::BTreeSet;

use super::{OrderItem, OrderLineInput};
use crate::domain::product::Product;
use crate::domain::rejection::Rejection;

/// The currency of an order without items (validation requires at least one line).
const DEFAULT_CURRENCY: &str = "EUR";

/// The lines' items at today's prices and their currency, or why the order cannot be placed.
/// `product` looks a product up by id (`None` when it does not exist).
pub(crate) fn price_lines<E>(
    lines: &[OrderLineInput],
    mut product: impl FnMut(&str) -> Result<Option<Product>, E>,
) -> Result<Result<(Vec<OrderItem>, String), Rejection>, E> {
    let mut unknown = Vec::new();
    let mut items: Vec<OrderItem> = Vec::with_capacity(lines.len());
    let mut currencies = BTreeSet::new();
    for line in lines {
        match product(&line.product_id)? {
            Some(product) if product.active => {
                let already = items
                    .iter()
                    .filter(|item| item.product_id == product.id)
                    .map(|item| item.quantity)
                    .sum::<i64>();
                if product.stock < already + line.quantity {
                    return Ok(Err(Rejection::InsufficientStock {
                        product_id: product.id,
                        available: product.stock,
                        requested: already + line.quantity,
                    }));
                }
                currencies.insert(product.currency.clone());
                items.push(OrderItem {
                    product_id: product.id,
                    product_name: product.name,
                    quantity: line.quantity,
                    unit_price_cents: product.price_cents,
                });
            }
            _ => unknown.push(line.product_id.clone()),
        }
    }
    if !unknown.is_empty() {
        return Ok(Err(Rejection::UnknownProducts(unknown)));
    }
    if currencies.len() > 1 {
        return Ok(Err(Rejection::MixedCurrencies(
            currencies.into_iter().collect(),
        )));
    }
    Ok(Ok((
        items,
        currencies
            .into_iter()
            .next()
            .unwrap_or_else(|| DEFAULT_CURRENCY.to_owned()),
    )))
}

/// What the items cost together, in minor units: each line's quantity times its unit price
/// (whole cents throughout, so there is nothing to round).
pub fn total_cents(items: &[OrderItem]) -> i64 {
    items
        .iter()
        .map(|item| item.quantity * item.unit_price_cents)
        .sum()
}

/// Units per product over all of an order's items, in product order.
pub(crate) fn quantities(items: &[OrderItem]) -> Vec<(String, i64)> {
    let mut totals: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for item in items {
        *totals.entry(item.product_id.as_str()).or_insert(0) += item.quantity;
    }
    totals
        .into_iter()
        .map(|(id, quantity)| (id.to_owned(), quantity))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn product(id: &str, price_cents: i64, currency: &str, stock: i64, active: bool) -> Product {
        let at = crate::domain::now();
        Product {
            id: id.into(),
            tenant_id: "t-1".into(),
            name: format!("Product {id}"),
            category: "kitchen".into(),
            description: None,
            price_cents,
            currency: currency.into(),
            stock,
            active,
            sku: None,
            erp_on_hand: None,
            reserved: 0,
            created_at: at,
            updated_at: at,
            etag: String::new(),
        }
    }

    fn line(product_id: &str, quantity: i64) -> OrderLineInput {
        OrderLineInput {
            product_id: product_id.into(),
            quantity,
        }
    }

    fn catalogue(
        products: Vec<Product>,
    ) -> impl FnMut(&str) -> Result<Option<Product>, Infallible> {
        move |id| Ok(products.iter().find(|p| p.id == id).cloned())
    }

    fn price(
        lines: &[OrderLineInput],
        products: Vec<Product>,
    ) -> Result<(Vec<OrderItem>, String), Rejection> {
        match price_lines(lines, catalogue(products)) {
            Ok(priced) => priced,
            Err(never) => match never {},
        }
    }

    #[test]
    fn lines_are_priced_at_the_catalogue_price_in_line_order() {
        let (items, currency) = price(
            &[line("p-2", 1), line("p-1", 3)],
            vec![
                product("p-1", 250, "USD", 10, true),
                product("p-2", 1999, "USD", 1, true),
            ],
        )
        .expect("priced");
        assert_eq!(currency, "USD");
        assert_eq!(
            items,
            vec![
                OrderItem {
                    product_id: "p-2".into(),
                    product_name: "Product p-2".into(),
                    quantity: 1,
                    unit_price_cents: 1999,
                },
                OrderItem {
                    product_id: "p-1".into(),
                    product_name: "Product p-1".into(),
                    quantity: 3,
                    unit_price_cents: 250,
                },
            ]
        );
        assert_eq!(total_cents(&items), 1999 + 3 * 250);
    }

    #[test]
    fn the_total_is_the_sum_of_whole_cent_lines() {
        assert_eq!(total_cents(&[]), 0);
        let items = [
            OrderItem {
                product_id: "p-1".into(),
                product_name: "Kettle".into(),
                quantity: 3,
                unit_price_cents: 333,
            },
            OrderItem {
                product_id: "p-1".into(),
                product_name: "Kettle".into(),
                quantity: 1,
                unit_price_cents: 1,
            },
        ];
        assert_eq!(total_cents(&items), 1000, "no rounding: 3 x 333 + 1");
    }

    #[test]
    fn stock_counts_every_line_of_a_product() {
        let products = vec![product("p-1", 100, "EUR", 4, true)];
        assert!(price(&[line("p-1", 2), line("p-1", 2)], products.clone()).is_ok());
        assert_eq!(
            price(&[line("p-1", 2), line("p-1", 3)], products),
            Err(Rejection::InsufficientStock {
                product_id: "p-1".into(),
                available: 4,
                requested: 5,
            })
        );
    }

    #[test]
    fn unknown_and_inactive_products_are_listed_together() {
        assert_eq!(
            price(
                &[line("p-1", 1), line("p-gone", 1), line("p-off", 1)],
                vec![
                    product("p-1", 100, "EUR", 5, true),
                    product("p-off", 100, "EUR", 5, false),
                ],
            ),
            Err(Rejection::UnknownProducts(vec![
                "p-gone".into(),
                "p-off".into()
            ]))
        );
    }

    #[test]
    fn an_order_has_one_currency() {
        assert_eq!(
            price(
                &[line("p-1", 1), line("p-2", 1), line("p-3", 1)],
                vec![
                    product("p-1", 100, "USD", 5, true),
                    product("p-2", 100, "EUR", 5, true),
                    product("p-3", 100, "USD", 5, true),
                ],
            ),
            Err(Rejection::MixedCurrencies(vec!["EUR".into(), "USD".into()]))
        );
        let (items, currency) = price(&[], Vec::new()).expect("no lines");
        assert!(items.is_empty());
        assert_eq!(currency, "EUR", "the currency of an order without lines");
    }

    #[test]
    fn a_lookup_failure_is_passed_on() {
        let failed = price_lines(&[line("p-1", 1)], |_| Err::<Option<Product>, _>("down"));
        assert_eq!(failed, Err("down"));
    }

    #[test]
    fn quantities_add_up_per_product_in_product_order() {
        let item = |id: &str, quantity| OrderItem {
            product_id: id.into(),
            product_name: id.into(),
            quantity,
            unit_price_cents: 1,
        };
        assert_eq!(
            quantities(&[item("p-2", 1), item("p-1", 2), item("p-2", 3)]),
            vec![("p-1".to_owned(), 2), ("p-2".to_owned(), 4)]
        );
    }
}
