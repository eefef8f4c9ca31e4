import sharp from 'sharp'

/**
 * libvips can load far more than the contract allows (SVG, PDF, HEIC, ...).
 * Block every loader, then allow only ours, so a file that slipped past the
 * content sniffing still cannot reach another parser (field notes D12).
 */
const ALLOWED_LOADERS = ['Jpeg', 'Png', 'Webp', 'Nsgif', 'Tiff', 'Heif'].flatMap((name) => [
  `VipsForeignLoad${name}File`,
  `VipsForeignLoad${name}Buffer`,
])

/**
 * Process-wide sharp settings for a long-running server (field notes D2-D4):
 * no operation cache (every upload is new, so it only holds memory) and one
 * libvips thread per image (parallelism comes from images in flight).
 */
export function configureSharp(): typeof sharp {
  sharp.cache(false)
  sharp.concurrency(1)
  sharp.block({operation: ['VipsForeignLoad']})
  sharp.unblock({operation: ALLOWED_LOADERS})
  return sharp
}
