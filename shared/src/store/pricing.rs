//! Pricing an order's lines against the catalogue: the rules both adapters apply before they
//! reserve stock (unknown or inactive products, stock per product over all its lines, one
//! currency per order).

use std::collections::BTreeSet;

use super::{NewOrder, Rejection};
use crate::domain::order::OrderItem;
use crate::domain::product::Product;

/// The order's items at today's prices and its currency, or why it cannot be placed.
/// `product` looks a product up by id (`None` when it does not exist).
pub fn price_lines<E>(
    order: &NewOrder,
    mut product: impl FnMut(&str) -> Result<Option<Product>, E>,
) -> Result<Result<(Vec<OrderItem>, String), Rejection>, E> {
    let mut unknown = Vec::new();
    let mut items: Vec<OrderItem> = Vec::with_capacity(order.input.items.len());
    let mut currencies = BTreeSet::new();
    for line in &order.input.items {
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
            .unwrap_or_else(|| "EUR".to_owned()),
    )))
}

/// Units per product over all of an order's items, in product order.
pub fn quantities(items: &[OrderItem]) -> Vec<(String, i64)> {
    let mut totals: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for item in items {
        *totals.entry(item.product_id.as_str()).or_insert(0) += item.quantity;
    }
    totals
        .into_iter()
        .map(|(id, quantity)| (id.to_owned(), quantity))
        .collect()
}
