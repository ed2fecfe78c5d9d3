//! The exported grid and array-metric functions (`simtrack_grid`,
//! `simtrack_log_array`, `simtrack_log_array_f32`); see [`crate::grid`].

use std::ffi::c_char;

use super::boundary::guard;
use super::handle::{Handle, borrow};
use super::strings::{opt_str, req_str};
use crate::error::{Error, Status};
use crate::grid::{AxisDef, MAX_AXES, Order, Values};

/// The array's last grid axis varies fastest (C `double a[n0][n1]`).
pub const SIMTRACK_ORDER_C: i32 = 0;
/// The array's grid axis 0 varies fastest (Fortran `real(8) :: a(n0, n1)`).
pub const SIMTRACK_ORDER_FORTRAN: i32 = 1;

/// One axis of a grid: its label, units (NULL: none) and `n` coordinates,
/// ordered (increasing or decreasing).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct simtrack_axis {
    pub label: *const c_char,
    pub units: *const c_char,
    pub coords: *const f64,
    pub n: usize,
}

fn null(what: &str) -> Error {
    Error::new(Status::NullArgument, format!("{what} is NULL"))
}

/// Defines grid `name` of the run, with `ndim` (1 to 3) axes given in
/// `axes[0..ndim]`. Array metrics are then logged on it by name with
/// `simtrack_log_array`. Defining a name again with the same axis lengths
/// does nothing; with other lengths it fails (`SIMTRACK_STATUS_INVALID_ARGUMENT`).
/// Coordinates are copied.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `name` is NULL or
/// NUL-terminated; `axes` is NULL or points to `ndim` axes whose strings are
/// NULL or NUL-terminated and whose `coords` are NULL or valid for `n` doubles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_grid(
    run: *mut Handle,
    name: *const c_char,
    ndim: i32,
    axes: *const simtrack_axis,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, name) = unsafe { (borrow(run)?, req_str(name, "name")?) };
        if ndim < 1 || ndim as usize > MAX_AXES {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("grid '{name}': ndim must be 1 to {MAX_AXES}, not {ndim}"),
            ));
        }
        if axes.is_null() {
            return Err(null("axes"));
        }
        // SAFETY: non-NULL and valid for ndim axes per the contract.
        let raw = unsafe { std::slice::from_raw_parts(axes, ndim as usize) };
        let mut defs = Vec::with_capacity(raw.len());
        for (i, a) in raw.iter().enumerate() {
            if a.coords.is_null() {
                return Err(null(&format!("axis {i}'s coords")));
            }
            // SAFETY: per the contract.
            let (label, units, coords) = unsafe {
                (
                    opt_str(a.label, "label")?.unwrap_or(""),
                    opt_str(a.units, "units")?.unwrap_or(""),
                    std::slice::from_raw_parts(a.coords, a.n),
                )
            };
            defs.push(AxisDef {
                label,
                units,
                coords,
            });
        }
        run.grid(name, &defs)
    })
}

fn order_of(order: i32) -> Result<Order, Error> {
    match order {
        SIMTRACK_ORDER_C => Ok(Order::C),
        SIMTRACK_ORDER_FORTRAN => Ok(Order::Fortran),
        o => Err(Error::new(
            Status::InvalidArgument,
            format!("order must be SIMTRACK_ORDER_C (0) or SIMTRACK_ORDER_FORTRAN (1), not {o}"),
        )),
    }
}

/// Logs `data[0..n]` as step `step` (>= 0) of array metric `metric` on grid
/// `grid` (defined with `simtrack_grid`); `n` must be the grid's number of
/// points and `order` says how `data` lies over the grid's axes
/// (`SIMTRACK_ORDER_FORTRAN`: axis 0 fastest, written without a copy;
/// `SIMTRACK_ORDER_C`: the last axis fastest).
///
/// Never waits on the network and never holds the array in memory: the
/// values are written to the run's spool directory before the call returns
/// and delivered from there (or by `simtrack sync`). Fails with
/// `SIMTRACK_STATUS_INVALID_ARGUMENT` for an unknown grid or a wrong `n`,
/// `SIMTRACK_STATUS_NULL_ARGUMENT` for a NULL `data`, `SIMTRACK_STATUS_IO`
/// if the local disk refuses the values.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; strings are NULL or
/// NUL-terminated; `data` is NULL or valid for `n` doubles.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_log_array(
    run: *mut Handle,
    metric: *const c_char,
    grid: *const c_char,
    data: *const f64,
    n: usize,
    order: i32,
    step: i64,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, metric, grid) = unsafe {
            (
                borrow(run)?,
                req_str(metric, "metric")?,
                req_str(grid, "grid")?,
            )
        };
        if data.is_null() {
            return Err(null("data"));
        }
        // SAFETY: non-NULL and valid for n doubles per the contract.
        let values = unsafe { std::slice::from_raw_parts(data, n) };
        run.log_array(metric, grid, Values::F64(values), order_of(order)?, step)
    })
}

/// As `simtrack_log_array` for single-precision data (stored as double).
///
/// # Safety
/// As `simtrack_log_array`, `data` valid for `n` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_log_array_f32(
    run: *mut Handle,
    metric: *const c_char,
    grid: *const c_char,
    data: *const f32,
    n: usize,
    order: i32,
    step: i64,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, metric, grid) = unsafe {
            (
                borrow(run)?,
                req_str(metric, "metric")?,
                req_str(grid, "grid")?,
            )
        };
        if data.is_null() {
            return Err(null("data"));
        }
        // SAFETY: non-NULL and valid for n floats per the contract.
        let values = unsafe { std::slice::from_raw_parts(data, n) };
        run.log_array(metric, grid, Values::F32(values), order_of(order)?, step)
    })
}
