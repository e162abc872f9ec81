// Where each avatar sits in the grid the crate draws for a batch (src/image.rs `batch_to_grid`
// with `square_columns`, called by src/web.rs with a 2-pixel gap). The page's download, the
// step anatomy's picker and the rows of the teaching views all read the layout from here.

/** Background pixels between two images of a grid or a row. */
export const GRID_GAP = 2;

/** Columns of the most square grid for `batch` images (1, 4, 9, 16 give square grids). */
export function gridColumns(batch) {
  let columns = 1;
  while (columns * columns < batch) columns += 1;
  return columns;
}

/**
 * The layout of `batch` images of `size` x `size` pixels: `{columns, rows, origin(index)}`
 * (the top-left pixel of image `index`) and `indexAt(x, y)` (the image under a pixel, or -1 in
 * a gap or outside).
 */
export function gridLayout(batch, size) {
  const columns = gridColumns(batch);
  const cell = size + GRID_GAP;
  return {
    columns,
    rows: Math.ceil(batch / columns),
    origin: (index) => [(index % columns) * cell, Math.floor(index / columns) * cell],
    indexAt(x, y) {
      const [column, row] = [Math.floor(x / cell), Math.floor(y / cell)];
      const inImage = x - column * cell < size && y - row * cell < size;
      const index = row * columns + column;
      return inImage && column >= 0 && column < columns && row >= 0 && index < batch ? index : -1;
    },
  };
}
