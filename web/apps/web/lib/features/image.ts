/**
 * Scales a picked picture down to {@link AVATAR_SIZE_PX} and re-encodes it in the browser. The
 * re-encoding also drops the file's metadata (camera, location), which would otherwise reach
 * everyone who sees the picture.
 */
import { AVATAR_SIZE_PX, fitWithin } from './profile';

const OUTPUT_TYPE = 'image/webp';
const OUTPUT_QUALITY = 0.88;

export async function shrinkImage(file: Blob, max = AVATAR_SIZE_PX): Promise<Blob> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error('This file is not an image the browser can read.');
  }
  try {
    const { width, height } = fitWithin(bitmap.width, bitmap.height, max);
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext('2d');
    if (!context) throw new Error('The browser could not prepare the picture.');
    context.drawImage(bitmap, 0, 0, width, height);
    // Browsers that cannot encode WebP give PNG; `blob.type` says which.
    const blob = await new Promise<Blob | null>((resolve) =>
      canvas.toBlob(resolve, OUTPUT_TYPE, OUTPUT_QUALITY),
    );
    if (!blob) throw new Error('The browser could not prepare the picture.');
    return blob;
  } finally {
    bitmap.close();
  }
}
