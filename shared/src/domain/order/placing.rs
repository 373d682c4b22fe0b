//! Placing an order: the rules both storage adapters apply, written once. The customer must be
//! active; the lines are priced against the catalogue ([`super::pricing`]); the total is the sum
//! of the lines; the shipping address falls back to the customer's; the order starts pending,
//! and its status history starts with that entry, by whoever placed it.
//!
//! Storage concerns stay with the adapters: finding the customer (a missing one is "not found"),
//! reading the products, idempotency, reserving stock, and writing it all atomically.

use chrono::{DateTime, Utc};

use super::pricing::{price_lines, total_cents};
use super::{Order, OrderInput, OrderStatus, StatusChange};
use crate::domain::customer::{Customer, CustomerStatus};
use crate::domain::etag::new_etag;
use crate::domain::product::Product;
use crate::domain::rejection::Rejection;

/// What is asked for: a new order's id and tenant, the validated request, and who asks.
#[derive(Debug, Clone, Copy)]
pub struct OrderRequest<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub input: &'a OrderInput,
    pub actor_id: &'a str,
}

/// A placed order, not yet stored, and the first entry of its status history.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedOrder {
    pub order: Order,
    pub first_status: StatusChange,
}

impl Order {
    /// Places `request` for `customer` at `at`, pricing its lines with `product` (a product by
    /// id, `None` when it does not exist, as stored now): the new pending order (a fresh ETag,
    /// created and updated `at`) and its first status entry, or the rule that refuses it.
    /// A failing `product` lookup is passed on as the outer `Err`.
    pub fn place<E>(
        request: OrderRequest<'_>,
        customer: &Customer,
        product: impl FnMut(&str) -> Result<Option<Product>, E>,
        at: DateTime<Utc>,
    ) -> Result<Result<PlacedOrder, Rejection>, E> {
        if customer.status != CustomerStatus::Active {
            return Ok(Err(Rejection::CustomerNotActive(customer.status.as_str())));
        }
        let (items, currency) = match price_lines(&request.input.items, product)? {
            Ok(priced) => priced,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let order = Order {
            id: request.id.to_owned(),
            tenant_id: request.tenant_id.to_owned(),
            customer_id: customer.id.clone(),
            status: OrderStatus::Pending,
            total_cents: total_cents(&items),
            items,
            currency,
            shipping_address: request
                .input
                .shipping_address
                .clone()
                .or_else(|| customer.address.clone()),
            created_at: at,
            updated_at: at,
            etag: new_etag(),
        };
        let first_status = StatusChange {
            status: OrderStatus::Pending,
            at,
            actor_id: request.actor_id.to_owned(),
            reason: None,
        };
        Ok(Ok(PlacedOrder {
            order,
            first_status,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::domain::customer::{Address, NotificationPreferences};
    use crate::domain::order::{OrderItem, OrderLineInput};

    fn address(city: &str) -> Address {
        Address {
            line1: "1 Main Street".into(),
            line2: None,
            city: city.into(),
            postal_code: "1000".into(),
            country: "BE".into(),
        }
    }

    fn customer(status: CustomerStatus, address: Option<Address>) -> Customer {
        let at = crate::domain::now();
        Customer {
            id: "c-1".into(),
            tenant_id: "t-1".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            phone: None,
            address,
            preferences: NotificationPreferences::default(),
            status,
            created_at: at,
            updated_at: at,
            last_activity_at: at,
            etag: "c-version".into(),
        }
    }

    fn catalogue(id: &str) -> Result<Option<Product>, Infallible> {
        let at = crate::domain::now();
        let product = |id: &str, price_cents, stock| Product {
            id: id.into(),
            tenant_id: "t-1".into(),
            name: format!("Product {id}"),
            category: "kitchen".into(),
            description: None,
            price_cents,
            currency: "EUR".into(),
            stock,
            active: true,
            sku: None,
            erp_on_hand: None,
            reserved: 0,
            created_at: at,
            updated_at: at,
            etag: String::new(),
        };
        Ok(match id {
            "p-1" => Some(product("p-1", 250, 10)),
            "p-2" => Some(product("p-2", 1999, 1)),
            _ => None,
        })
    }

    fn input(lines: &[(&str, i64)], shipping_address: Option<Address>) -> OrderInput {
        OrderInput {
            customer_id: None,
            items: lines
                .iter()
                .map(|(product_id, quantity)| OrderLineInput {
                    product_id: (*product_id).into(),
                    quantity: *quantity,
                })
                .collect(),
            shipping_address,
        }
    }

    fn place(input: &OrderInput, customer: &Customer) -> Result<PlacedOrder, Rejection> {
        let request = OrderRequest {
            id: "o-1",
            tenant_id: "t-1",
            input,
            actor_id: "employee-7",
        };
        match Order::place(request, customer, catalogue, at()) {
            Ok(placed) => placed,
            Err(never) => match never {},
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn a_placed_order_is_pending_priced_and_totalled() {
        let customer = customer(CustomerStatus::Active, None);
        let PlacedOrder {
            order,
            first_status,
        } = place(&input(&[("p-1", 3), ("p-2", 1)], None), &customer).expect("placed");
        assert_eq!(order.id, "o-1");
        assert_eq!(order.tenant_id, "t-1");
        assert_eq!(order.customer_id, "c-1");
        assert_eq!(order.status, OrderStatus::Pending);
        assert_eq!(
            order.items,
            vec![
                OrderItem {
                    product_id: "p-1".into(),
                    product_name: "Product p-1".into(),
                    quantity: 3,
                    unit_price_cents: 250,
                },
                OrderItem {
                    product_id: "p-2".into(),
                    product_name: "Product p-2".into(),
                    quantity: 1,
                    unit_price_cents: 1999,
                },
            ]
        );
        assert_eq!(order.total_cents, 3 * 250 + 1999);
        assert_eq!(order.currency, "EUR");
        assert_eq!((order.created_at, order.updated_at), (at(), at()));
        assert!(!order.etag.is_empty(), "a fresh version");
        assert_eq!(
            first_status,
            StatusChange {
                status: OrderStatus::Pending,
                at: at(),
                actor_id: "employee-7".into(),
                reason: None,
            }
        );
    }

    #[test]
    fn every_placed_order_gets_its_own_version() {
        let customer = customer(CustomerStatus::Active, None);
        let order = input(&[("p-1", 1)], None);
        let first = place(&order, &customer).expect("placed");
        let second = place(&order, &customer).expect("placed");
        assert_ne!(first.order.etag, second.order.etag);
    }

    #[test]
    fn the_shipping_address_falls_back_to_the_customers() {
        let customer = customer(CustomerStatus::Active, Some(address("Ghent")));
        let fallback = place(&input(&[("p-1", 1)], None), &customer).expect("placed");
        assert_eq!(fallback.order.shipping_address, Some(address("Ghent")));
        let given =
            place(&input(&[("p-1", 1)], Some(address("Liège"))), &customer).expect("placed");
        assert_eq!(given.order.shipping_address, Some(address("Liège")));
        let nowhere = place(
            &input(&[("p-1", 1)], None),
            &self::customer(CustomerStatus::Active, None),
        )
        .expect("placed");
        assert_eq!(nowhere.order.shipping_address, None);
    }

    #[test]
    fn only_an_active_customer_may_order() {
        for status in [CustomerStatus::ErasureRequested, CustomerStatus::Erased] {
            assert_eq!(
                place(&input(&[("p-1", 1)], None), &customer(status, None)),
                Err(Rejection::CustomerNotActive(status.as_str()))
            );
        }
    }

    #[test]
    fn an_inactive_customer_is_refused_before_the_lines_are_priced() {
        let mut lookups = 0;
        let request = input(&[("p-1", 1)], None);
        let refused = Order::place(
            OrderRequest {
                id: "o-1",
                tenant_id: "t-1",
                input: &request,
                actor_id: "a",
            },
            &customer(CustomerStatus::Erased, None),
            |id| {
                lookups += 1;
                catalogue(id)
            },
            at(),
        );
        assert!(matches!(
            refused,
            Ok(Err(Rejection::CustomerNotActive("erased")))
        ));
        assert_eq!(lookups, 0);
    }

    #[test]
    fn pricing_rejections_refuse_the_order() {
        let customer = customer(CustomerStatus::Active, None);
        assert_eq!(
            place(&input(&[("p-2", 2)], None), &customer),
            Err(Rejection::InsufficientStock {
                product_id: "p-2".into(),
                available: 1,
                requested: 2,
            })
        );
        assert_eq!(
            place(&input(&[("p-9", 1)], None), &customer),
            Err(Rejection::UnknownProducts(vec!["p-9".into()]))
        );
    }

    #[test]
    fn a_failing_lookup_is_passed_on() {
        let request = input(&[("p-1", 1)], None);
        let failed = Order::place(
            OrderRequest {
                id: "o-1",
                tenant_id: "t-1",
                input: &request,
                actor_id: "a",
            },
            &customer(CustomerStatus::Active, None),
            |_| Err::<Option<Product>, _>("store down"),
            at(),
        );
        assert!(matches!(failed, Err("store down")));
    }
}
