//! The three operations of the fake ERP over its memory: each answers its response payload or
//! the fault a real ERP would give for the same input.

use shared::erp::{
    FaultSide, GetProducts, GetStockChanges, GoodsMovement, GoodsMovementPosted, MovementKind,
    Payload, ProductList, ProductPage, SoapFault, StockChanges, StockItem, StockItemList,
};

use super::state::{Memory, Posted, StockChange};

const MAX_PAGE: u32 = 1000;

fn invalid(reason: impl Into<String>) -> SoapFault {
    SoapFault::new(FaultSide::Caller, "INVALID_REQUEST", reason)
}

fn check_page_size(page_size: u32) -> Result<usize, SoapFault> {
    if (1..=MAX_PAGE).contains(&page_size) {
        Ok(page_size as usize)
    } else {
        Err(invalid(format!(
            "pageSize must be 1 to {MAX_PAGE}, not {page_size}"
        )))
    }
}

/// `GetStockChanges`: the log after the checkpoint.
pub fn stock_changes(memory: &Memory, request: &GetStockChanges) -> Result<Payload, SoapFault> {
    let page_size = check_page_size(request.page_size)?;
    let since = match request.since_token.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(token) => token.parse::<u64>().map_err(|_| {
            invalid(format!(
                "sinceToken {token:?} is not a token this service issued"
            ))
        })?,
    };
    let after: Vec<&StockChange> = memory.log.iter().filter(|c| c.seq > since).collect();
    let page = &after[..after.len().min(page_size)];
    let items = page
        .iter()
        .map(|change| StockItem {
            sku: change.sku.clone(),
            on_hand: change.on_hand,
            changed_at: change.at,
        })
        .collect();
    Ok(Payload::GetStockChangesResponse(StockChanges {
        items: StockItemList { items },
        next_token: page.last().map_or(since, |change| change.seq).to_string(),
        has_more: after.len() > page.len(),
    }))
}

/// `GetProducts`: the products changed after `changedSince`, by SKU, one page.
pub fn products(memory: &Memory, request: &GetProducts) -> Result<Payload, SoapFault> {
    let page_size = check_page_size(request.page_size.unwrap_or(100))?;
    if request.page == 0 {
        return Err(invalid("page starts at 1"));
    }
    let skip = (request.page as usize - 1).saturating_mul(page_size);
    let mut changed = memory.products.values().filter(|stocked| {
        request
            .changed_since
            .is_none_or(|since| stocked.changed_at > since)
    });
    let products = changed
        .by_ref()
        .skip(skip)
        .take(page_size)
        .map(|stocked| stocked.product.clone())
        .collect();
    Ok(Payload::GetProductsResponse(ProductPage {
        products: ProductList { products },
        has_more: changed.next().is_some(),
    }))
}

/// `PostGoodsMovement`: applied once per document reference.
pub fn post_movement(memory: &mut Memory, movement: &GoodsMovement) -> Result<Payload, SoapFault> {
    let reference = movement.document_reference.trim();
    if reference.is_empty() {
        return Err(invalid("documentReference is empty"));
    }
    if let Some(posted) = memory.documents.get(reference) {
        if posted.movement != *movement {
            return Err(SoapFault::new(
                FaultSide::Caller,
                "DOCUMENT_REFERENCE_CONFLICT",
                format!(
                    "documentReference {reference} was posted with other content as document {}",
                    posted.number
                ),
            ));
        }
        return Ok(answer(&posted.number, true));
    }
    check_lines(memory, movement)?;
    for line in &movement.lines.lines {
        let delta = i64::from(line.quantity);
        let on_hand = memory.products.get(&line.sku).map_or(0, |s| s.on_hand);
        let next = match movement.kind {
            MovementKind::Issue => on_hand - delta,
            MovementKind::Return => on_hand + delta,
        };
        memory.set_on_hand(&line.sku, next);
    }
    let number = memory.next_document_number();
    memory.documents.insert(
        reference.to_owned(),
        Posted {
            number: number.clone(),
            movement: movement.clone(),
        },
    );
    Ok(answer(&number, false))
}

fn check_lines(memory: &Memory, movement: &GoodsMovement) -> Result<(), SoapFault> {
    if movement.lines.lines.is_empty() {
        return Err(invalid("a goods movement needs at least one line"));
    }
    for line in &movement.lines.lines {
        if line.quantity == 0 {
            return Err(invalid(format!(
                "quantity of {} must be at least 1",
                line.sku
            )));
        }
        if !memory.products.contains_key(&line.sku) {
            return Err(SoapFault::new(
                FaultSide::Caller,
                "UNKNOWN_SKU",
                format!("unknown SKU {}", line.sku),
            ));
        }
    }
    Ok(())
}

fn answer(number: &str, duplicate: bool) -> Payload {
    Payload::PostGoodsMovementResponse(GoodsMovementPosted {
        document_number: number.to_owned(),
        duplicate,
    })
}
